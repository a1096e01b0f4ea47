"""Re-identification: pseudonyms back to the identifiers people checked in with. Always audited."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qrtrace.producers.edge import CONTACT_CONTEXT, IDENTITY_CONTEXT
from qrtrace.sinks.audit import AuditLog
from qrtrace.sinks.clickhouse_sql import load_sql
from qrtrace.sinks.store import Store

from qrtrace.identity import Vault


@dataclass(frozen=True)
class Identity:
    identifier: str
    contact: str


def reidentify(
    store: Store, vault: Vault, audit: AuditLog, persons: Sequence[str], case_id: str, purpose: str
) -> dict[str, Identity]:
    """Open the vault rows of `persons`; unknown pseudonyms map to themselves (marked '?')."""
    if not persons:
        return {}
    rows = store.query(load_sql("qrtrace.queries", "sealed_identities"), {"persons": list(persons)})
    found = {
        p: Identity(vault.open(i, IDENTITY_CONTEXT), vault.open(c, CONTACT_CONTEXT) if c else "")
        for p, i, c in zip(rows["person"], rows["identifier_sealed"], rows["contact_sealed"], strict=True)
    }
    audit.record("reidentify", case_id, "", purpose, count=len(persons), opened=len(found))
    return {p: found.get(p, Identity(f"?{p[:12]}", "")) for p in persons}
