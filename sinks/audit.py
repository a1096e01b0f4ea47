"""The audit log: every trace, export and re-identification, with who, when, which case and why."""

from __future__ import annotations

import time

import orjson

from qrtrace.sinks.store import Store


def now_us() -> int:
    return time.time_ns() // 1000


class AuditLog:
    """Append-only: this class only ever inserts."""

    def __init__(self, store: Store, actor: str) -> None:
        self.store = store
        self.actor = actor

    def as_actor(self, actor: str) -> AuditLog:
        """The same log, written in another actor's name (the API's caller, not the server's user)."""
        return AuditLog(self.store, actor)

    def record(self, action: str, case_id: str, subject: str, purpose: str, **detail: object) -> None:
        self.store.insert(
            "qrtrace.audit_log",
            {
                "at_us": [now_us()],
                "actor": [self.actor],
                "action": [action],
                "case_id": [case_id],
                "subject": [subject],
                "purpose": [purpose],
                "detail": [orjson.dumps(detail).decode()],
            },
        )
