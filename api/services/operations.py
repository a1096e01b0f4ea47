"""Operators and admins (api/routes/operations.py): pipeline health from the store, the workers' metrics and
this server's own ingest; the audit log for admins."""

from __future__ import annotations

import orjson

from qrtrace import render
from qrtrace.access import Action, Principal, Scope, authorize
from qrtrace.api import views
from qrtrace.api.services.core import ServiceCore
from qrtrace.queries.audit import audit_entries
from qrtrace.queries.dead_letters import dead_letter_reasons
from qrtrace.queries.ingest_rates import events_per_minute, ingest_rates
from qrtrace.queries.store_size import table_sizes
from qrtrace.sinks.audit import now_us


class OperationsService(ServiceCore):
    """The operations and audit routes' decisions."""

    def operations(self, who: Principal) -> dict:
        """Workers' rates and lag, the front door, this server's ingest, check-ins stored per minute (last
        hour), dead letters by reason (last 7 days) and the store's size per table."""
        from qrtrace.api.scanner_door import front_door_stats

        authorize(who, Action.READ_OPERATIONS, Scope(), self.geo)
        now = now_us()
        with self._lock:
            dead = dead_letter_reasons(self.rt.store, now - 7 * views.US_PER_DAY)
            sizes = table_sizes(self.rt.store)
            stored = ingest_rates(self.rt.store, now - 60 * 60_000_000)
        per_minute = events_per_minute(stored)
        return {
            "mode": "embedded" if self.settings.broker is None else "distributed",
            "store": "chDB (embedded)" if self.settings.is_embedded_store else "ClickHouse server",
            "workers": self.watcher.scrape(self.settings.metrics_urls),
            "front_door": {"kind": self.front.kind, **front_door_stats()},
            "api_ingest": {**self.ingest_stats.__dict__,
                           "events_per_second": (self.ingest_stats.received / self.ingest_stats.seconds
                                                 if self.ingest_stats.seconds else None)},
            "stored_per_minute": [{"minute_us": m * 60_000_000, "events": n} for m, n in sorted(per_minute.items())],
            "dead_letters": [{"reason": d.reason, "count": d.count,
                              "last_at": render.iso(d.last_at_us, self.settings.display_tz)} for d in dead],
            "store_size": [{"table": s.table, "rows": s.rows, "bytes": s.bytes} for s in sizes],
        }  # fmt: skip

    def audit_log(self, who: Principal, since_us: int, action: str, case_id: str, limit: int) -> list[dict]:
        """The audit log after `since_us`, newest first, optionally one action's or one case's (admins)."""
        authorize(who, Action.READ_AUDIT, Scope(), self.geo)
        with self._lock:
            entries = audit_entries(self.rt.store, since_us, action, case_id, limit)
        tz = self.settings.display_tz
        return [
            {"at": render.iso(e.at_us, tz), "actor": e.actor, "action": e.action, "case_id": e.case_id,
             "subject": e.subject, "purpose": e.purpose, "detail": orjson.loads(e.detail) if e.detail else {}}
            for e in entries
        ]  # fmt: skip
