"""Reading the audit log (writing it is sinks/audit.py): newest first, narrowed by action or case."""

from __future__ import annotations

from dataclasses import dataclass

from qrtrace.sinks.clickhouse_sql import load_sql
from qrtrace.sinks.store import Store


@dataclass(frozen=True)
class AuditEntry:
    """One audit log entry; `detail` is the stored JSON text ('' for none)."""

    at_us: int
    actor: str
    action: str
    case_id: str
    subject: str
    purpose: str
    detail: str


def audit_entries(store: Store, since_us: int, action: str, case_id: str, limit: int) -> list[AuditEntry]:
    """At most `limit` entries after `since_us`, newest first; `action` and `case_id` narrow them ('' = any)."""
    rows = store.query(load_sql("qrtrace.queries", "audit_log_read"),
                       {"since_us": since_us, "action": action, "case_id": case_id, "limit": limit})  # fmt: skip
    return [
        AuditEntry(*row)
        for row in zip(rows["at_us"], rows["actor"], rows["action"], rows["case_id"], rows["subject"],
                       rows["purpose"], rows["detail"], strict=True)
    ]  # fmt: skip
