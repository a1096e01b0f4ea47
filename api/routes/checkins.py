"""Scanner batches: every check-in for the scanner's own venue, or the whole request is refused."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError

from qrtrace.api.app import Caller, Service
from qrtrace.api.models import MAX_CHECKINS, CheckinIn
from qrtrace.api.service import TooLarge

router = APIRouter(tags=["check-ins"])
# What the JSON encoder and decoder of the ingest path (orjson) hold exactly: a whole number outside this
# range would fail the encoder (a 500) or turn into an approximate float on the file path.
INT_RANGE = (-(2**63), 2**64 - 1)


def _check_numbers(body: list[CheckinIn]) -> None:
    """A 422 naming the first declaration value that is a whole number beyond 64 bits."""
    for i, checkin in enumerate(body):
        for key, value in (checkin.declaration or {}).items():
            if isinstance(value, int) and not INT_RANGE[0] <= value <= INT_RANGE[1]:
                raise RequestValidationError([{
                    "loc": ("body", i, "declaration", key), "type": "int_too_large",
                    "msg": "a whole number beyond 64 bits cannot be stored; send it as text (nothing from this "
                           "batch was stored)",
                }])  # fmt: skip


@router.post("/checkins", status_code=202)
def ingest(body: list[CheckinIn], who: Caller, svc: Service) -> dict:
    """Store a batch (up to 5,000) and answer once it is stored: `accepted` counts the scans that passed the
    edge (a retried scan_id is dropped downstream, so resending a batch is safe), `dead_lettered` and
    `reasons` the ones kept as dead letters. A batch with a check-in for another venue (403), a forged
    venue QR (400), a mistyped record or a declaration number beyond 64 bits (422) or too many records (413)
    stores nothing."""
    svc.check_ingest_role(who)  # the role first: a refused caller learns nothing about the body
    if len(body) > MAX_CHECKINS:
        raise TooLarge(f"The batch holds {len(body):,} check-ins; send at most {MAX_CHECKINS:,} per request.")
    _check_numbers(body)
    return svc.ingest(who, [c.model_dump() for c in body])
