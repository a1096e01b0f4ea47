"""`qrtrace follow-up list|set|export|create`: contact follow-up from the command line (registered on the main CLI,
qrtrace/cli.py). The store's operator acts under QRTRACE_ACTOR; every change and export is audited."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from qrtrace import render
from qrtrace.errors import InputError
from qrtrace.queries.follow_up import STATUSES, TESTED_POSITIVE, Update, check_status, status_label

follow_up_app = typer.Typer(no_args_is_help=True, help="Contact follow-up by the communes' health stations.")
StoreOpt = Annotated[str | None, typer.Option("--store", help="Store directory or chdb:///path [env QRTRACE_STORE].")]
LangOpt = Annotated[str | None, typer.Option("--lang", help="Labels: vi or en [env QRTRACE_LANG].")]
REIDENTIFY_HELP = "Identifiers and phones instead of pseudonyms (audited with --purpose)."
HEADERS = {"vi": ("Mã theo dõi", "Xã", "Mức", "Nguy cơ", "Địa điểm", "Phơi nhiễm", "Trạng thái", "Ca F0"),
           "en": ("Follow-up", "Commune", "Tier", "Risk", "Venue", "Exposed", "Status", "Case")}  # fmt: skip


def _open(store: str | None, lang: str | None):  # type: ignore[no-untyped-def]
    from qrtrace.cli import _runtime, _settings

    settings = _settings(store, lang)
    return settings, _runtime(settings)


def _time(value: str | None, flag: str, settings) -> int | None:  # type: ignore[no-untyped-def]
    from qrtrace.cli import parse_time

    return parse_time(value, flag, settings) if value else None


def follow_up_list(
    commune: Annotated[str | None, typer.Option("--commune", help="The commune (its code); default: all.")] = None,
    status: Annotated[str | None, typer.Option("--status", help=f"Only this status: {', '.join(STATUSES)}.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the records as JSON.")] = False,
    store: StoreOpt = None,
    lang: LangOpt = None,
) -> None:
    """The follow-up records of a commune (pseudonyms), with their status."""
    from qrtrace.sinks import follow_up as fu

    if status:
        check_status(status)
    settings, rt = _open(store, lang)
    with rt:
        records = fu.listing(rt.store, frozenset({commune}) if commune else None, status or "")
        _, names = fu.venue_places(rt.store)
    tz = settings.display_tz
    if as_json:
        rows = [{"follow_up_id": r.follow_up_id, "case_id": r.case_id, "person": r.person, "hop": r.hop,
                 "risk": r.risk, "venue_id": r.venue_id, "commune_code": r.commune_code,
                 "exposed_from": render.iso(r.exposed_from_us, tz), "exposed_to": render.iso(r.exposed_to_us, tz),
                 "status": r.status, "new_case_id": r.new_case_id or None, "notes": r.notes}
                for r in records]  # fmt: skip
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    from qrtrace.cli import out

    table = Table(*HEADERS[settings.lang])
    for r in records:
        table.add_row(r.follow_up_id, r.commune_code, f"F{r.hop}", r.risk, names.get(r.venue_id, r.venue_id),
                      render.local_time(r.exposed_from_us, tz), status_label(r.status, settings.lang), r.new_case_id)
    out.print(table)
    out.print(f"{len(records):,}")


def follow_up_set(
    follow_up_id: Annotated[str, typer.Argument(help="The record's id (fu-...).")],
    status: Annotated[str | None, typer.Option("--status", help=f"{', '.join(STATUSES)}.")] = None,
    date: Annotated[str | None, typer.Option("--date", help="When (ISO 8601): quarantine start or test date.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="End of the quarantine (ISO 8601).")] = None,
    note: Annotated[str | None, typer.Option("--note", help="A note added to the record.")] = None,
    case_id: Annotated[str | None, typer.Option("--case-id", help="tested_positive: the new case's id.")] = None,
    store: StoreOpt = None,
    lang: LangOpt = None,
) -> None:
    """Change a record's status and/or add a note; tested_positive declares the contact a case (F0)."""
    from qrtrace.cli import out
    from qrtrace.sinks import follow_up as fu

    if status:
        check_status(status)
    settings, rt = _open(store, lang)
    with rt:
        date_us, until_us = _time(date, "--date", settings), _time(until, "--until", settings)
        try:
            if status == TESTED_POSITIVE:
                after, new_case, _ = fu.declare_positive(rt.store, rt.audit, follow_up_id, date_us, case_id, None,
                                                         None, note)  # fmt: skip
                out.print(f"{follow_up_id}: {status_label(after.status, settings.lang)} → case {new_case}")
                return
            _, after = fu.update(rt.store, rt.audit, follow_up_id, Update(status, date_us, until_us, note))
        except (fu.UnknownFollowUp, fu.CaseTaken) as exc:
            raise InputError(str(exc)) from None
    out.print(f"{follow_up_id}: {status_label(after.status, settings.lang)}")


def follow_up_export(
    output: Annotated[Path, typer.Option("-o", "--output", help="The file to write (0600).")],
    fmt: Annotated[str, typer.Option("--format", help="district (XLSX), district-csv, sormas or godata.")] = "district",
    commune: Annotated[str | None, typer.Option("--commune", help="The commune (its code); default: all.")] = None,
    reidentify: Annotated[bool, typer.Option("--reidentify", help=REIDENTIFY_HELP)] = False,
    purpose: Annotated[str, typer.Option("--purpose", help="Why (audit log).")] = "contact follow-up",
    store: StoreOpt = None,
    lang: LangOpt = None,
) -> None:
    """Export the records as the district's spreadsheet, a SORMAS or a Go.Data contact import."""
    from qrtrace.cli import out
    from qrtrace.sinks import follow_up as fu
    from qrtrace.spreadsheet import private_file

    kind = "district-xlsx" if fmt == "district" else fmt
    if kind not in fu.EXPORT_FORMATS:
        raise InputError(f"--format must be district, district-csv, sormas or godata, not {fmt!r}.")
    settings, rt = _open(store, lang)
    with rt:
        records = fu.listing(rt.store, frozenset({commune}) if commune else None)
        _, places = fu.venue_places(rt.store)
        names = fu.commune_names(rt.store)
        people = fu.people_for_export(rt.store, rt.vault, rt.audit, records, purpose) if reidentify and records \
            else {}  # fmt: skip
        rt.audit.record("export_follow_ups", "", commune or "*", purpose, format=kind, rows=len(records),
                        reidentified=bool(people))  # fmt: skip
    body, _, _ = fu.export_file(kind, records, people, places, names, settings.display_tz, settings.lang)
    with private_file(output, "wb") as fh:
        fh.write(body)
    out.print(f"{len(records):,} → {output}")


def follow_up_create(
    trace_id: Annotated[str, typer.Option("--trace", help="A stored trace run's id (tr-...).")],
    store: StoreOpt = None,
) -> None:
    """Create the follow-up records of a stored trace run (idempotent)."""
    from qrtrace.cli import out
    from qrtrace.sinks import follow_up as fu

    _, rt = _open(store, None)
    with rt:
        try:
            counts = fu.create_from_run(rt.store, trace_id, rt.audit)
        except fu.UnknownFollowUp as exc:
            raise InputError(str(exc)) from None
    out.print(f"contacts {counts['contacts']:,}, created {counts['created']:,}")


def register(app: typer.Typer) -> None:
    """Add `follow-up` to the main CLI."""
    follow_up_app.command("list")(follow_up_list)
    follow_up_app.command("set")(follow_up_set)
    follow_up_app.command("export")(follow_up_export)
    follow_up_app.command("create")(follow_up_create)
    app.add_typer(follow_up_app, name="follow-up")
