"""Contact follow-up in the store (tables `follow_ups`, `follow_up_history`): the shell the API and the CLI call
over the pure core (queries/follow_up.py).

- `create_from_run`: a stored trace run's contacts become records (only the ids the store does not hold yet are
  written, so storing or re-running the same trace creates nothing twice). The API calls it when a trace job
  is stored; `qrtrace follow-up create --trace ID` and POST /api/traces/{id}/follow-ups for older runs.
- `update`: a status and/or note, appended to the history and audited (`follow_up_update`).
- `declare_positive`: tested_positive declares the contact a case (F0) in one step: a `cases` row for the
  contact's pseudonym (never an identifier), linked to the record (`new_case_id`), audited (`declare_case`).
- `people_for_export`: identifiers and phones of records, for roles allowed to open them (audited).
Callers check roles and scopes first (api/services/follow_up.py); these functions trust their arguments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from qrtrace.queries.cases import declared_cases
from qrtrace.queries.follow_up import (
    TESTED_POSITIVE,
    Change,
    ExportPerson,
    FollowUp,
    Update,
    apply_update,
    declared,
    default_case_id,
    infectious_window,
    records_from_rows,
)
from qrtrace.queries.reidentify import reidentify
from qrtrace.queries.trace_runs import case_exposures, stored_run
from qrtrace.sinks.audit import AuditLog, now_us
from qrtrace.sinks.clickhouse_sql import chunked, load_sql
from qrtrace.sinks.store import Store

FIELDS = [f.name for f in dataclasses.fields(FollowUp)]
INT_FIELDS = {f.name for f in dataclasses.fields(FollowUp) if f.type in ("int", int)}


class UnknownFollowUp(LookupError):
    """No such record (the shells answer 404 / one error line)."""


class CaseTaken(ValueError):
    """The case id asked for a positive contact is already declared."""


def _records(rows: dict[str, list]) -> list[FollowUp]:
    return [FollowUp(**{f: (int(rows[f][i]) if f in INT_FIELDS else rows[f][i]) for f in FIELDS})
            for i in range(len(rows["follow_up_id"]))]  # fmt: skip


def venue_places(store: Store) -> tuple[dict[str, str], dict[str, str]]:
    """venue_id -> commune_code, and venue_id -> name, for every registered venue."""
    rows = store.query(load_sql("qrtrace.queries", "follow_up_venues"))
    return (dict(zip(rows["venue_id"], rows["commune_code"], strict=True)),
            dict(zip(rows["venue_id"], rows["name"], strict=True)))  # fmt: skip


def commune_names(store: Store) -> dict[str, str]:
    rows = store.query(load_sql("qrtrace.queries", "follow_up_communes"))
    return dict(zip(rows["commune_code"], rows["name_vi"], strict=True))


def by_ids(store: Store, ids: Sequence[str]) -> dict[str, FollowUp]:
    """The records of `ids` that exist."""
    out: dict[str, FollowUp] = {}
    for chunk in chunked(list(ids)):
        out |= {r.follow_up_id: r for r in _records(store.query(load_sql("qrtrace.queries", "follow_ups_by_id"),
                                                                 {"ids": chunk}))}  # fmt: skip
    return out


def one(store: Store, follow_up_id: str) -> FollowUp:
    found = by_ids(store, [follow_up_id]).get(follow_up_id)
    if found is None:
        raise UnknownFollowUp(f"No follow-up record {follow_up_id}.")
    return found


def listing(store: Store, communes: frozenset[str] | None, status: str = "") -> list[FollowUp]:
    """The records of `communes` (None: all), optionally of one status."""
    rows = store.query(load_sql("qrtrace.queries", "follow_ups_read"),
                       {"everyone": int(communes is None), "communes": sorted(communes or ()), "status": status})
    return _records(rows)


def history(store: Store, follow_up_id: str) -> list[dict]:
    rows = store.query(load_sql("qrtrace.queries", "follow_up_history_read"), {"follow_up_id": follow_up_id})
    return [{"at_us": int(a), "actor": who, "field": f, "from": x, "to": y}
            for a, who, f, x, y in zip(rows["at_us"], rows["actor"], rows["field"], rows["from_value"],
                                       rows["to_value"], strict=True)]  # fmt: skip


def write(store: Store, records: Sequence[FollowUp]) -> None:
    if records:
        store.insert("qrtrace.follow_ups", {f: [getattr(r, f) for r in records] for f in FIELDS})


def write_history(store: Store, changes: Sequence[Change]) -> None:
    if changes:
        names = [f.name for f in dataclasses.fields(Change)]
        store.insert("qrtrace.follow_up_history", {n: [getattr(c, n) for c in changes] for n in names})


def create_from_run(store: Store, trace_id: str, audit: AuditLog | None = None) -> dict[str, int]:
    """Records for every contact of the stored run `trace_id` not yet followed up; returns counts
    (`contacts` in the run, `created` now). UnknownFollowUp if there is no finished run of that id."""
    import orjson

    run = stored_run(store, trace_id)
    if run is None:
        raise UnknownFollowUp(f"No finished trace {trace_id}.")
    headers = orjson.loads(run.result)
    commune_of_venue, _ = venue_places(store)
    at = now_us()
    contacts = created = 0
    for i, header in enumerate(headers):  # a case at a time: memory is one case's records, whatever the batch
        case_id = header.get("case_id") or ""
        if not case_id or "exposure_rows" not in header:  # runs of older versions hold whole documents
            continue
        records = records_from_rows(case_id, trace_id, case_exposures(store, trace_id, i), commune_of_venue, at)
        known = set(by_ids(store, [r.follow_up_id for r in records]))
        new = [r for r in records if r.follow_up_id not in known]
        write(store, new)
        contacts += len(records)
        created += len(new)
    if audit is not None and created:
        audit.record("follow_up_create", run.case_ids, trace_id, "contact follow-up", created=created)
    return {"contacts": contacts, "created": created}


def _audited(change: Change) -> list[str]:
    if change.field == "notes":
        return [f"{len(change.from_value)} characters", f"{len(change.to_value)} characters"]
    return [change.from_value, change.to_value]


def update(store: Store, audit: AuditLog, follow_up_id: str, change: Update, purpose: str = "contact follow-up"
           ) -> tuple[FollowUp, FollowUp]:  # fmt: skip
    """Apply `change` (InputError if not allowed); returns (before, after). Written, history kept, audited."""
    before = one(store, follow_up_id)
    after, changes = apply_update(before, change, audit.actor, now_us())
    write(store, [after])
    write_history(store, changes)
    # The audit log outlives retention and admins read it: it names what changed, and a note's length only (a
    # note is free text about a person's health; the record's history, dropped with the visits, keeps it).
    audit.record("follow_up_update", before.case_id, follow_up_id, purpose,
                 changes={c.field: _audited(c) for c in changes})  # fmt: skip
    return before, after


def declare_positive(store: Store, audit: AuditLog, follow_up_id: str, tested_on_us: int | None,
                     case_id: str | None, from_us: int | None, to_us: int | None, note: str | None
                     ) -> tuple[FollowUp, str, tuple[int, int]]:  # fmt: skip
    """tested_positive and the case (F0) in one step: the record's status, then a case for its pseudonym with
    the window (default tested_on - 2 days .. tested_on). CaseTaken before anything is written if the id is
    declared already. Returns the record, the case id and the window."""
    record = one(store, follow_up_id)
    new_case = (case_id or "").strip() or default_case_id(record)
    if declared_cases(store, [new_case]):
        raise CaseTaken(f"Case {new_case} is already declared; choose another case_id.")
    at = now_us()
    after, changes = apply_update(record, Update(TESTED_POSITIVE, tested_on_us, None, note), audit.actor, at)
    window = infectious_window(after.tested_on_us, from_us, to_us)
    after, link = declared(after, new_case, audit.actor, at)
    store.insert("qrtrace.cases", {"case_id": [new_case], "person": [record.person],
                                   "infectious_from_us": [window[0]], "infectious_to_us": [window[1]],
                                   "declared_at_us": [at], "declared_by": [audit.actor]})  # fmt: skip
    write(store, [after])
    write_history(store, [*changes, link])
    audit.record("declare_case", new_case, record.person, "positive contact of a follow-up", from_us=window[0],
                 to_us=window[1], follow_up_id=follow_up_id, contact_of=record.case_id)  # fmt: skip
    return after, new_case, window


def people_for_export(store: Store, vault, audit: AuditLog, records: Sequence[FollowUp], purpose: str  # type: ignore[no-untyped-def]
                      ) -> dict[str, ExportPerson]:  # fmt: skip
    """person -> identifier and phone, for the records' people (re-identification: audited with `purpose`)."""
    persons = sorted({r.person for r in records})
    found = reidentify(store, vault, audit, persons, ",".join(sorted({r.case_id for r in records}))[:500], purpose)
    return {p: ExportPerson(i.identifier, i.contact) for p, i in found.items()}


EXPORT_FORMATS = ("district-xlsx", "district-csv", "sormas", "godata")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def export_file(fmt: str, records: Sequence[FollowUp], people: dict[str, ExportPerson], places: dict[str, str],
                communes: dict[str, str], tz, lang: str = "vi") -> tuple[bytes, str, str]:  # type: ignore[no-untyped-def]  # fmt: skip
    """The export's bytes, media type and file extension. Every cell through `spreadsheet.safe_cell`: an
    identifier, a note or a venue name that looks like a formula is never run."""
    import csv
    import io
    from datetime import UTC, datetime

    from qrtrace.queries import follow_up as core
    from qrtrace.spreadsheet import safe_row

    def fmt_time(us: int) -> str:
        return datetime.fromtimestamp(us / 1e6, UTC).astimezone(tz).strftime("%d/%m/%Y %H:%M")

    def fmt_day(us: int) -> str:
        return datetime.fromtimestamp(us / 1e6, UTC).astimezone(tz).strftime("%Y-%m-%d") if us else ""

    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}.")
    if fmt == "sormas":
        rows = core.sormas_rows(records, people, places, communes, fmt_day)
    elif fmt == "godata":
        rows = core.godata_rows(records, people, places, fmt_day)
    else:
        vi_day = (lambda us: datetime.fromtimestamp(us / 1e6, UTC).astimezone(tz).strftime("%d/%m/%Y")) \
            if lang == "vi" else fmt_day  # fmt: skip
        rows = [list(core.DISTRICT_HEADERS), *core.district_rows(records, people, places, communes, fmt_time, vi_day,
                                                                   lang)]  # fmt: skip
    if fmt == "district-xlsx":
        from openpyxl import Workbook

        wb = Workbook()
        ws = wb.active
        ws.title = "Theo dõi F1-F2"
        for row in rows:
            ws.append(safe_row(row))
        buf = io.BytesIO()
        wb.save(buf)
        return buf.getvalue(), XLSX_TYPE, "xlsx"
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    for row in rows:
        writer.writerow(safe_row(row))
    return buf.getvalue().encode("utf-8-sig"), "text/csv; charset=utf-8", "csv"
