"""Scanner batches (api/routes/checkins.py, and the scanner door in front of it): every check-in for the
caller's own venue and every scanned venue QR genuine, or the whole batch is refused."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence

import orjson

from qrtrace.access import Action, Principal, Scope, authorize
from qrtrace.api.services.core import ServiceCore
from qrtrace.domain.venue_qr import ForgedVenueQrError, decode_venue_qr
from qrtrace.errors import InputError
from qrtrace.producers.coalesce import Share
from qrtrace.producers.front import send
from qrtrace.sinks.audit import now_us


class CheckinService(ServiceCore):
    """The check-in route's decisions."""

    def check_ingest_role(self, who: Principal) -> None:
        """AccessDenied unless the caller's role may send check-ins at all."""
        self._allowed(who, Action.INGEST_CHECKINS)

    def checkin_lines(self, who: Principal, records: Sequence[dict]) -> tuple[list[bytes], set[str]]:
        """A scanner's batch as JSON lines and the venues it names: every check-in for the caller's own venue
        and any scanned venue QR genuine, or the whole batch is refused (AccessDenied, InputError)."""
        public_key = self._venue_public_key
        lines, venue_ids = [], set()
        for i, record in enumerate(records, start=1):
            venue_id = record["venue_id"]
            if venue_id not in venue_ids:
                authorize(who, Action.INGEST_CHECKINS, Scope(venue_id=venue_id), self.geo)
                venue_ids.add(venue_id)
            qr = record.pop("venue_qr", None)
            if qr is not None:
                try:
                    claims = decode_venue_qr(qr, public_key)
                except ForgedVenueQrError as exc:  # a 400 for the whole batch: a forged poster is an incident
                    raise ForgedVenueQrError(f"Check-in {i}: {exc} Nothing from this batch was stored.") from None
                if claims.venue_id != venue_id:
                    raise InputError(f"Check-in {i} carries the QR of venue {claims.venue_id}, not "
                                     f"{venue_id}; nothing from this batch was stored.")  # fmt: skip
                if claims.zone and record.get("zone") is None:
                    record["zone"] = claims.zone  # a zone's QR: the check-in is at that zone
                elif claims.zone != (record.get("zone") or ""):
                    raise InputError(f"Check-in {i} names zone {record.get('zone')!r} but carries the QR of "
                                     f"zone {claims.zone!r}; nothing from this batch was stored.")  # fmt: skip
            if record.get("declaration") is None:
                record.pop("declaration", None)
            if record.get("zone") is None:
                record.pop("zone", None)
            lines.append(orjson.dumps(record))
        return lines, venue_ids

    def ingest(self, who: Principal, records: Sequence[dict]) -> dict:
        """A scanner's batch, blocking until it is kept (the scanner door does the same without a thread)."""
        self._allowed(who, Action.INGEST_CHECKINS)
        if not records:
            return self.checkin_answer(None)
        lines, venue_ids = self.checkin_lines(who, records)
        started = time.perf_counter()
        share = send(self.front, lines, venue_ids, "api")  # FrontUnavailable: 503 + Retry-After
        self.count_ingest(share, time.perf_counter() - started)
        return self.checkin_answer(share)

    def checkin_answer(self, share: Share | None) -> dict:
        """A 202's body: `accepted` counts the scans that passed the edge (a retried scan_id is dropped
        downstream, so resending a batch is safe), `dead_lettered` and `reasons` the ones kept as dead letters;
        `stored` (embedded) or `queued` (Kafka acknowledged it) says what the 202 means."""
        letters = share.dead_letters if share is not None else []
        answer = {"received": share.received if share is not None else 0,
                  "accepted": len(share.checkins) if share is not None else 0, "dead_lettered": len(letters),
                  "reasons": dict(Counter(d.reason for d in letters))}  # fmt: skip
        return {**answer, "queued": True} if self.front.kind == "kafka" else {**answer, "stored": True}

    def count_ingest(self, share: Share, seconds: float) -> None:
        """A kept scanner batch, for the operations page."""
        with self._jobs_lock:
            s = self.ingest_stats
            s.batches += 1
            s.received += share.received
            s.dead_lettered += len(share.dead_letters)
            s.seconds += seconds
            s.last_at_us = now_us()
