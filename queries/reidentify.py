"""Re-identification: pseudonyms back to the identifiers people checked in with. Always audited."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qrtrace.identity import Vault
from qrtrace.producers.edge import CONTACT_CONTEXT, IDENTITY_CONTEXT
from qrtrace.sinks.audit import AuditLog
from qrtrace.sinks.clickhouse_sql import chunked, load_sql
from qrtrace.sinks.store import Store


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
    sql = load_sql("qrtrace.queries", "sealed_identities")
    found: dict[str, Identity] = {}
    for chunk in chunked(persons):
        rows = store.query(sql, {"persons": chunk})
        for p, i, c in zip(rows["person"], rows["identifier_sealed"], rows["contact_sealed"], strict=True):
            found[p] = Identity(vault.open(i, IDENTITY_CONTEXT), vault.open(c, CONTACT_CONTEXT) if c else "")
    audit.record("reidentify", case_id, "", purpose, count=len(persons), opened=len(found))
    return {p: found.get(p, Identity(f"?{p[:12]}", "")) for p in persons}
