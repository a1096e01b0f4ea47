"""The paper-log shell: `qrtrace paper template|import` and what the CLI and the API share to store a sheet.

A sheet's rows go through the same edge as every check-in (pseudonymised there, nothing raw stored); a row
the sheet itself refuses becomes a dead letter too (its reason, a pseudonymous payload and the row sealed
in the vault), so a refused row is data, never lost. The pure reading is producers/paper_log.py.
"""

from __future__ import annotations

import hashlib
import hmac
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from qrtrace.domain.venues import Venue
from qrtrace.errors import InputError
from qrtrace.i18n import t
from qrtrace.identity import Pseudonymiser, Vault
from qrtrace.producers.edge import DEAD_LETTER_CONTEXT
from qrtrace.producers.paper_log import (
    NotATemplate,
    PaperLog,
    VenueInfo,
    edge_refusals,
    label,
    read_paper_log,
    reason_text,
    report_dict,
    scan_key,
    template_xlsx,
)
from qrtrace.settings import Settings
from qrtrace.stream_processors.batch import DeadLetter

MAX_PAPER_BYTES = 2 * 1024 * 1024  # one sheet; the API answers 413 past it


def venue_infos(venues: Sequence[Venue]) -> dict[str, VenueInfo]:
    """The registered venues as the reader needs them."""
    return {v.venue_id: VenueInfo(v.name, tuple(v.zones)) for v in venues}


def refused_letters(log: PaperLog, pseudonymiser: Pseudonymiser, vault: Vault, key: bytes) -> list[DeadLetter]:
    """A dead letter for each row the sheet refused: reason, row and column readable, the person as a
    pseudonym, the row's identifier and cell sealed. Its id is keyed on (venue, date, row, reason, person),
    so a sheet imported twice the same day keeps one dead letter per refused row."""
    letters = []
    for r in log.refused:
        person = pseudonymiser.one(r.identifier) if r.identifier else ""
        msg = "\x1f".join((log.venue_id, str(log.day), str(r.row), r.reason, person))
        dl_id = hmac.new(key, b"dead-letter\x1f" + msg.encode(), hashlib.sha256).hexdigest()[:32]
        redacted = {"venue_id": log.venue_id, "mode": "manual", "row": r.row, "column": r.column,
                    "date": log.day.isoformat() if log.day else None}  # fmt: skip
        if person:
            redacted["person"] = person
        sealed = vault.seal(orjson.dumps({"row": r.row, "identifier": r.identifier, "cell": r.detail}).decode(),
                            DEAD_LETTER_CONTEXT)  # fmt: skip
        detail = f"paper log row {r.row}, column {r.column}: {reason_text(r.reason, 'en')}"
        letters.append(DeadLetter(dl_id, r.reason, detail, orjson.dumps(redacted).decode(), sealed))
    return letters


def letter_keys(letters: Sequence[DeadLetter]) -> list[tuple[str, str, str]]:
    """(scan_id, reason, detail) of the edge's dead letters (their redacted payload keeps the scan_id)."""
    out = []
    for d in letters:
        try:
            sid = orjson.loads(d.payload_redacted).get("scan_id", "")
        except orjson.JSONDecodeError:
            sid = ""
        out.append((str(sid), d.reason, d.detail))
    return out


def read_sheet(data: bytes, venues: Sequence[Venue], settings: Settings, pseudonym_key: bytes,
               venue_id: str | None) -> PaperLog:  # fmt: skip
    """The sheet read against the registry; InputError (one sentence) for a file that is not a template."""
    try:
        return read_paper_log(data, venue_infos(venues), scan_key(pseudonym_key), settings.clock_us(),
                              venue_id=venue_id, max_future_us=settings.max_future_us, tz=settings.display_tz,
                              lang=settings.lang)  # fmt: skip
    except NotATemplate as exc:
        raise InputError(str(exc)) from None


def store_sheet(rt, data: bytes, venue_id: str | None, source: str) -> dict:  # type: ignore[no-untyped-def]
    """Read a sheet, store its refused rows as dead letters, then its check-ins through the runtime's ingest
    (the path of `qrtrace ingest`), and answer the report (the API does the same through its front door)."""
    settings: Settings = rt.settings
    log = read_sheet(data, rt.venues(), settings, rt.keyring.pseudonym_key, venue_id)
    from qrtrace.sinks.audit import now_us

    rt.writer.dead_letters(refused_letters(log, rt.pseudonymiser, rt.vault, scan_key(rt.keyring.pseudonym_key)),
                           source, now_us())  # fmt: skip
    edge_letters: list[DeadLetter] = []
    if log.lines:
        rt.ingest([log.lines], source=source, on_admitted=lambda a: edge_letters.extend(a.dead_letters))
    return report_dict(log, edge_refusals(log, letter_keys(edge_letters), settings.lang), settings.lang)


# -- CLI --------------------------------------------------------------------------------------------------
paper_app = typer.Typer(no_args_is_help=True, help="Paper logs: check in people without phones by hand.")
StoreOpt = Annotated[str | None, typer.Option("--store", help="Store directory or chdb:///path [env QRTRACE_STORE].")]
LangOpt = Annotated[str | None, typer.Option("--lang", help="Labels: vi or en [env QRTRACE_LANG].")]


@paper_app.command("template")
def paper_template(
    output: Annotated[Path, typer.Option("-o", "--output", help="The XLSX file to write.")],
    venue: Annotated[str | None, typer.Option("--venue", help="The venue id written at the top.")] = None,
    day: Annotated[str | None, typer.Option("--date", help="The day of the log (YYYY-MM-DD).")] = None,
    store: StoreOpt = None,
    lang: LangOpt = None,
) -> None:
    """Write the blank paper log (XLSX) a venue fills in for people without phones."""
    from qrtrace.cli import _runtime, _settings, out

    settings = _settings(store, lang)
    when = None
    if day is not None:
        try:
            when = date.fromisoformat(day)
        except ValueError:
            raise InputError(f"--date {day!r} is not a day such as 2021-07-20.") from None
    info = None
    if venue is not None:
        with _runtime(settings) as rt:
            info = venue_infos(rt.venues()).get(venue)
        if info is None:
            raise InputError(f"Venue {venue} is not registered; register it first (`qrtrace venues import`).")
    data = template_xlsx(venue or "", info, when, settings.lang)
    try:
        output.write_bytes(data)
    except OSError as exc:
        raise InputError(f"Cannot write {output}: {exc.strerror}.") from None
    out.print(f"{t('paper_written', settings.lang)}: {output}")


@paper_app.command("import")
def paper_import(
    file: Path,
    venue: Annotated[str | None, typer.Option("--venue", help="The venue the sheet is for (if B2 is blank).")] = None,
    store: StoreOpt = None,
    lang: LangOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Import a filled paper log as manual check-ins; prints every refused row (exit 1 if any)."""
    from qrtrace.cli import _runtime, _settings, out

    settings = _settings(store, lang)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InputError(f"Cannot read {file}: {exc.strerror or exc}.") from None
    if len(data) > MAX_PAPER_BYTES:
        raise InputError(f"{file} is over {MAX_PAPER_BYTES // (1024 * 1024)} MB; a paper log is one sheet.")
    with _runtime(settings) as rt:
        report = store_sheet(rt, data, venue, f"paper:{file.name}")
        rt.audit.record("paper_import", "", report["venue_id"], "paper log imported", rows=report["rows"],
                        refused=report["refused_rows"], checkins=report["checkins"])  # fmt: skip
    if as_json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print_report(out, report, settings.lang)
    if report["refused_rows"]:
        raise typer.Exit(1)


def print_report(console, report: dict, lang: str) -> None:  # type: ignore[no-untyped-def]
    """The report as the CLI shows it: counts, then one line per refused row."""
    head = Table(show_header=False, box=None)
    head.add_row(label("venue_id", lang), str(report["venue_id"]))
    head.add_row(label("date", lang), str(report["date"] or ""))
    for key in ("rows", "blank_rows", "accepted_rows", "checkins", "refused_rows"):
        head.add_row(t(f"paper_{key}", lang), f"{report[key]:,}")
    console.print(head)
    if report["refused"]:
        table = Table(t("paper_refused_rows", lang))
        for key in ("row", "column", "reason"):
            table.add_column(t(f"paper_{key}", lang))
        for r in report["refused"]:
            cell = f" ({r['cell']})" if r["cell"] else ""
            table.add_row(str(r["row"]), f"{r['column']} · {r['header']}", f"{r['message']}{cell}")
        console.print(table)


def register(app: typer.Typer) -> None:
    """`qrtrace paper ...` on the main CLI."""
    app.add_typer(paper_app, name="paper")
