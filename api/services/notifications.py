"""Notifications on a stored trace (api/routes/notifications.py): write the outbox for a finished trace run
and send it in the background; read the statuses of its messages.

Decisions:
- the gateway is the server's setting (QRTRACE_NOTIFY_GATEWAY), never a value of the request: a URL chosen
  by a caller would let anyone with a token make this server POST phone numbers anywhere (SSRF);
- only roles allowed to re-identify may send (sending opens phone numbers); the request and every opening
  of numbers are audited with the stated purpose;
- sending runs on its own thread (one at a time: the delivery journal is locked per store), through the
  store lock per statement, so a long send does not hold up scanners, traces or readers.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from qrtrace import render
from qrtrace.access import Action, Principal, Scope, authorize
from qrtrace.api.services.core import ServiceCore, stated_purpose
from qrtrace.api.services.errors import Conflict
from qrtrace.notify.cohort import compose, stored_notices
from qrtrace.notify.gateways import open_gateway
from qrtrace.notify.messages import ContactNotice, message_id
from qrtrace.notify.outbox import status_counts, statuses, write_outbox
from qrtrace.notify.sender import send_pending
from qrtrace.queries.trace_runs import case_exposures
from qrtrace.sinks.audit import AuditLog

log = logging.getLogger("qrtrace.api")


class NotificationService(ServiceCore):
    """The notification routes' decisions."""

    _notify_executor: ThreadPoolExecutor | None = None

    def _notices(self, trace_id: str) -> list[ContactNotice]:
        run = self._load_run(trace_id)  # type: ignore[attr-defined]  (CaseService: NotFound if not finished)
        if run["docs"] is not None:
            raise Conflict(f"The trace {trace_id} was stored by an earlier version; run it again to notify.")
        if any(h.get("rule") is None for h in run["headers"]):  # its contacts' tiers are unknown, not casual
            raise Conflict(f"The trace {trace_id} was run before risk tiers; run it again to notify its contacts "
                           "by tier.")  # fmt: skip
        return stored_notices(run["headers"], lambda i: case_exposures(self._locked_store, trace_id, i))

    def notify_trace(self, who: Principal, trace_id: str, tier: str, purpose: str) -> dict:
        """Queue one message per contact (of the tier) of a finished trace and send them in the background."""
        authorize(who, Action.REIDENTIFY, Scope(), self.geo)
        purpose = stated_purpose(purpose)
        notices = self._notices(trace_id)  # NotFound first: a trace that does not exist says so
        spec = self.settings.notify_gateway
        if not spec:
            raise Conflict("This server has no notification gateway; an operator sets QRTRACE_NOTIFY_GATEWAY.")
        gateway = open_gateway(spec, self.settings)  # a misconfigured gateway answers before anything is queued
        try:
            messages = compose(self._locked_store, self.settings, notices, tier, None)
            new = write_outbox(self._locked_store, messages, trace_id)
            with self._lock:
                self.rt.audit.as_actor(who.name).record("notify_request", "", trace_id, purpose, tier=tier,
                                                        messages=len(messages), new=len(new),
                                                        gateway=gateway.kind)  # fmt: skip
        except BaseException:
            gateway.close()
            raise
        if self._notify_executor is None:
            self._notify_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qrtrace-notify")
        ids = [m.message_id for m in messages]
        self._notify_executor.submit(self._send, gateway, ids, purpose, who.name)
        return {"trace_id": trace_id, "tier": tier, "messages": len(ids), "new": len(new), "status": "sending"}

    def _send(self, gateway, ids: list[str], purpose: str, actor: str) -> None:  # type: ignore[no-untyped-def]
        store = self._locked_store
        try:
            send_pending(store, self.rt.vault, AuditLog(store, actor), self.settings, gateway, purpose, only=ids)
        except Exception:  # statuses stay queued: `qrtrace notifications send` or another POST resumes them
            log.exception("sending notifications failed")
        finally:
            gateway.close()

    def notification_statuses(self, who: Principal, trace_id: str) -> dict:
        """Counts by status and each message's status (no phone numbers, no pseudonyms)."""
        authorize(who, Action.RUN_TRACE, Scope(), self.geo)
        notices = self._notices(trace_id)
        ids = {message_id(n.case_person, n.person, n.tier): n for n in notices}
        found = statuses(self._locked_store, list(ids))
        tz = self.settings.display_tz
        messages = [{"message_id": mid, "case_id": ids[mid].case_id, "tier": ids[mid].tier, "hop": ids[mid].hop,
                     "status": r.status, "reason": r.reason or None, "attempts": r.attempts,
                     "updated_at": render.iso(r.updated_at_us, tz)} for mid, r in sorted(found.items())]  # fmt: skip
        return {"trace_id": trace_id, "counts": status_counts(found.values()), "messages": messages}

    def close(self) -> None:
        if self._notify_executor is not None:
            self._notify_executor.shutdown(wait=True, cancel_futures=True)
        super().close()
