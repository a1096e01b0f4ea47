"""Scanner batches: every check-in for the scanner's own venue, or the whole request is refused."""

from __future__ import annotations

from fastapi import APIRouter

from qrtrace.api.app import Caller, Service
from qrtrace.api.models import MAX_CHECKINS, CheckinIn
from qrtrace.api.scanner_door import check_numbers
from qrtrace.api.service import TooLarge

router = APIRouter(tags=["check-ins"])


@router.post("/checkins", status_code=202)
def ingest(body: list[CheckinIn], who: Caller, svc: Service) -> dict:
    """Store a batch (up to 5,000) and answer once it is stored: `accepted` counts the scans that passed the
    edge (a retried scan_id is dropped downstream, so resending a batch is safe), `dead_lettered` and
    `reasons` the ones kept as dead letters. A batch with a check-in for another venue (403), a forged
    venue QR (400), a mistyped record or a declaration number beyond 64 bits (422) or too many records (413)
    stores nothing. A 503 with Retry-After means nothing was kept: send the same batch again.

    Served by the scanner door (`api/scanner_door.py`), an ASGI layer in front of this application that
    answers this route without FastAPI's per-request cost; this declaration documents it (and, wherever the
    door is not in front, answers through the same checks and service calls, blocking)."""
    svc.check_ingest_role(who)  # the role first: a refused caller learns nothing about the body
    if len(body) > MAX_CHECKINS:
        raise TooLarge(f"The batch holds {len(body):,} check-ins; send at most {MAX_CHECKINS:,} per request.")
    check_numbers(body)
    return svc.ingest(who, [c.model_dump() for c in body])
