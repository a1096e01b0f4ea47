"""Re-identification: pseudonyms back to the identifiers people checked in with. Always audited."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from qrtrace.identity import ContactEntry, Vault, contact_timeline, current_contact
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
    """Open the vault rows of `persons`; unknown pseudonyms map to themselves (marked '?'). The contact is
    the latest one ever given (a later check-in without one changes nothing), else a phone identifier."""
    if not persons:
        return {}
    identifiers = open_identifiers(store, vault, persons)
    timelines = open_contacts(store, vault, persons)
    found = {p: Identity(i, current_contact(i, timelines.get(p, []))) for p, i in identifiers.items()}
    audit.record("reidentify", case_id, "", purpose, count=len(persons), opened=len(found))
    return {p: found.get(p, Identity(f"?{p[:12]}", "")) for p in persons}


def contact_history(
    store: Store, vault: Vault, audit: AuditLog, persons: Sequence[str], case_id: str, purpose: str
) -> dict[str, list[ContactEntry]]:
    """Every contact each of `persons` was known by, oldest first (the last is the one to call); re-identifies,
    so audited like `reidentify`. People with none are left out."""
    if not persons:
        return {}
    timelines = open_contacts(store, vault, persons)
    audit.record("contact_history", case_id, "", purpose, count=len(persons), opened=len(timelines))
    return timelines


def open_identifiers(store: Store, vault: Vault, persons: Sequence[str]) -> dict[str, str]:
    """person -> the identifier they check in with, for those in the vault. Not audited: callers are."""
    sql = load_sql("qrtrace.queries", "sealed_identities")
    found: dict[str, str] = {}
    for chunk in chunked(persons):
        rows = store.query(sql, {"persons": chunk})
        for p, i in zip(rows["person"], rows["identifier_sealed"], strict=True):
            found[p] = vault.open(i, IDENTITY_CONTEXT)
    return found


def open_contacts(store: Store, vault: Vault, persons: Sequence[str]) -> dict[str, list[ContactEntry]]:
    """person -> their contact timeline (`identity.contact_timeline`), for those with any. Not audited."""
    sql = load_sql("qrtrace.queries", "sealed_contacts")
    entries: dict[str, list[ContactEntry]] = defaultdict(list)
    for chunk in chunked(persons):
        rows = store.query(sql, {"persons": chunk})
        for p, c, at, src in zip(rows["person"], rows["contact_sealed"], rows["seen_at_us"], rows["source"],
                                 strict=True):  # fmt: skip
            entries[p].append(ContactEntry(vault.open(c, CONTACT_CONTEXT), at, src))
    return {p: timeline for p, e in entries.items() if (timeline := contact_timeline(e))}
