"""The deployment census in the store (table `qrtrace.census`): import a commune's list, link a registered
venue to its establishment, read the list. The checks are the pure core's (qrtrace/domain/census.py); this
module reads the reference data they need, writes the accepted rows and audits each import and link.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from qrtrace.domain.census import CensusImport, Establishment, keep_links, parse_census, suggest_matches
from qrtrace.errors import InputError
from qrtrace.sinks.audit import AuditLog, now_us
from qrtrace.sinks.clickhouse_sql import load_sql
from qrtrace.sinks.store import Store


def stored_census(store: Store) -> list[Establishment]:
    """Every establishment of the census (latest version), ordered by commune and id."""
    r = store.query(load_sql("qrtrace.queries", "census_rows"))
    return [Establishment(e, n, c, cc, a, v) for cc, e, n, c, a, v in zip(
        r["commune_code"], r["establishment_id"], r["name"], r["category"], r["address"], r["venue_id"],
        strict=True)]  # fmt: skip


def write_census(store: Store, rows: Sequence[Establishment], at_us: int, actor: str) -> None:
    """One insert; the version is the time, so a later write replaces a row and the same rows collapse."""
    if not rows:
        return
    store.insert("qrtrace.census", {
        "commune_code": [e.commune_code for e in rows], "establishment_id": [e.establishment_id for e in rows],
        "name": [e.name for e in rows], "category": [e.category for e in rows], "address": [e.address for e in rows],
        "venue_id": [e.venue_id for e in rows], "imported_at_us": np.full(len(rows), at_us, dtype=np.int64),
        "imported_by": [actor] * len(rows), "version": np.full(len(rows), at_us, dtype=np.uint64),
    })  # fmt: skip


def _venue_communes(store: Store) -> dict[str, str]:
    r = store.query(load_sql("qrtrace.queries", "venues"))
    return dict(zip(r["venue_id"], r["commune_code"], strict=True))


def import_census(
    store: Store, audit: AuditLog, table: Sequence[Sequence[str]], source: str, area: Collection[str] | None
) -> CensusImport:
    """Check `table` (a census file's rows), write the accepted rows (each keeping a link it has in the
    store when the file gives none) and audit the import with its counts. `area`: the communes the importer
    may write (None: all). Returns what was accepted and every refused row."""
    communes = set(store.query(load_sql("qrtrace.queries", "communes"))["commune_code"])
    stored = {(e.commune_code, e.establishment_id): e for e in stored_census(store)}
    linked = {e.venue_id: key for key, e in stored.items() if e.venue_id}
    result = parse_census(table, source, communes, area, _venue_communes(store), linked)
    rows = keep_links(result.accepted, stored)
    write_census(store, rows, now_us(), audit.actor)
    audit.record("import_census", "", source[:200], "census imported", accepted=len(rows),
                 refused=len(result.refused), communes=sorted({e.commune_code for e in rows}))  # fmt: skip
    return CensusImport(rows, result.refused, result.rows_read)


def link_problem(census: Sequence[Establishment], venue_id: str, commune_code: str, establishment_id: str,
                 registered: dict[str, str]) -> str | None:  # fmt: skip
    """Why `venue_id` (to be registered in `commune_code`) cannot be linked to `establishment_id`, or None."""
    target = next((e for e in census if e.commune_code == commune_code and e.establishment_id == establishment_id),
                  None)  # fmt: skip
    if target is None:
        return f"establishment {establishment_id} is not in the census of commune {commune_code}"
    if target.venue_id and target.venue_id != venue_id and target.venue_id in registered:
        return f"establishment {establishment_id} is already linked to venue {target.venue_id}"
    other = next((e for e in census if e.venue_id == venue_id and e is not target), None)
    if other is not None:
        return f"venue {venue_id} is already linked to establishment {other.establishment_id}"
    return None


def link_venues(store: Store, audit: AuditLog, links: Sequence[tuple[str, str, str]]) -> list[Establishment]:
    """Link registered venues to their census establishments: (venue_id, commune_code, establishment_id) each,
    checked all before any is written (InputError naming the first that cannot be), one audit entry each."""
    census = stored_census(store)
    registered = _venue_communes(store)
    out = []
    for venue_id, commune_code, establishment_id in links:
        if registered.get(venue_id) != commune_code:
            raise InputError(f"Venue {venue_id} is not registered in commune {commune_code}; nothing was linked.")
        if problem := link_problem(census, venue_id, commune_code, establishment_id, registered):
            raise InputError(f"The {problem}; nothing was linked.")
        target = next(e for e in census if e.commune_code == commune_code and e.establishment_id == establishment_id)
        out.append(Establishment(target.establishment_id, target.name, target.category, target.commune_code,
                                 target.address, venue_id))  # fmt: skip
    keys = {(e.commune_code, e.establishment_id) for e in out}
    if len({e.venue_id for e in out}) != len(out) or len(keys) != len(out):
        raise InputError("A venue or an establishment is named twice among the links; nothing was linked.")
    write_census(store, out, now_us(), audit.actor)
    for e in out:
        audit.record("link_census", "", e.venue_id, "venue linked to its census establishment",
                     commune=e.commune_code, establishment_id=e.establishment_id)  # fmt: skip
    return out


def venue_file_links(text: str) -> list[tuple[str, str, str]]:
    """(venue_id, commune_code, establishment_id) of a venue CSV's optional `establishment_id` column (rows
    where it is filled); [] when the file has no such column."""
    import csv

    reader = csv.DictReader(text.splitlines())
    if "establishment_id" not in (reader.fieldnames or []):
        return []
    return [
        (
            (r.get("venue_id") or "").strip(),
            (r.get("commune_code") or "").strip(),
            (r["establishment_id"] or "").strip(),
        )
        for r in reader
        if (r["establishment_id"] or "").strip()
    ]


def check_links(store: Store, links: Sequence[tuple[str, str, str]], source: str) -> None:
    """InputError naming the first link of `links` that cannot be made (before its venues are registered)."""
    census = stored_census(store)
    registered = _venue_communes(store)
    for venue_id, commune_code, establishment_id in links:
        if problem := link_problem(census, venue_id, commune_code, establishment_id, registered):
            raise InputError(f"{source}: the {problem}; nothing was registered." if source
                             else f"The {problem}; nothing was registered.")  # fmt: skip


def matches_for(store: Store, venue_id: str, name: str, commune_code: str, category: str) -> list[dict]:
    """Suggested census establishments for a registered venue (same commune, unlinked, similar name)."""
    census = stored_census(store)
    current = next((e for e in census if e.venue_id == venue_id), None)
    if current is not None:
        return [{**_shown(current), "score": 1.0, "linked": True}]
    return [
        {**_shown(e), "score": score, "linked": False}
        for e, score in suggest_matches(name, commune_code, category, census)
    ]


def _shown(e: Establishment) -> dict:
    return {
        "establishment_id": e.establishment_id,
        "name": e.name,
        "category": e.category,
        "commune_code": e.commune_code,
        "address": e.address,
    }
