"""Rendering results for people: rich tables, JSON documents, CSV call lists. No logic beyond layout."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from qrtrace.domain.categories import load_categories
from qrtrace.i18n import t
from qrtrace.queries.coverage import CoverageReport
from qrtrace.queries.reidentify import Identity
from qrtrace.queries.risk import TIERS
from qrtrace.queries.trace import TraceResult
from qrtrace.settings import Settings
from qrtrace.spreadsheet import private_file, safe_row


def iso(us: int, tz: timezone) -> str:
    """UTC microseconds as ISO 8601 in `tz`, seconds precision unless the instant has a fraction."""
    when = datetime.fromtimestamp(us / 1_000_000, UTC).astimezone(tz)
    return when.isoformat(timespec="microseconds" if us % 1_000_000 else "seconds")


def local_time(when: int | str | datetime, tz: timezone, *, year: bool = False) -> str:
    """A time for people at a terminal: `05/12 07:42` (day/month hour:minute) in the display zone `tz`, from
    UTC microseconds, an ISO 8601 string (the JSON documents' times; without an offset it is read in `tz`)
    or a datetime. `year` adds the year (`05/12/2021 07:42`) where the day alone is not enough. JSON and
    files keep `iso`."""
    if isinstance(when, int):
        moment = datetime.fromtimestamp(when / 1_000_000, UTC)
    else:
        moment = datetime.fromisoformat(when) if isinstance(when, str) else when
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=tz)
    return moment.astimezone(tz).strftime("%d/%m/%Y %H:%M" if year else "%d/%m %H:%M")


def local_span(start: int | str | datetime, end: int | str | datetime, tz: timezone) -> str:
    """`05/12 07:42–08:10` (`local_time` of both ends; the day is written once when they share it)."""
    first, last = local_time(start, tz), local_time(end, tz)
    return f"{first}–{last[6:]}" if first[:5] == last[:5] else f"{first}–{last}"


@contextmanager
def progress(lang: str, disable: bool = False):  # type: ignore[no-untyped-def]
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=disable,
        transient=False,
    )
    with bar:
        yield bar


def progress_on_stderr(lang: str, disable: bool = False) -> Progress:
    """A progress bar on stderr (stdout may be carrying JSON): enter it with `with`."""
    from rich.console import Console

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), disable=disable, console=Console(stderr=True))  # fmt: skip


def ingest_dict(report) -> dict:  # type: ignore[no-untyped-def]
    d = asdict(report)
    d["reasons"] = dict(report.reasons)
    d["unpaired_reasons"] = dict(report.unpaired_reasons)
    d["events_per_s"] = round(report.received / report.seconds) if report.seconds else None
    return d


def ingest_report(console: Console, report, lang: str) -> None:  # type: ignore[no-untyped-def]
    table = Table(show_header=False, box=None)
    for key in ("received", "accepted", "deduplicated", "unpaired", "dead_lettered"):
        table.add_row(t(key, lang), f"{getattr(report, key):,}")
    table.add_row(t("visits", lang), f"{report.visits_written:,}")
    if report.seconds:
        table.add_row("", f"{report.received / report.seconds:,.0f} {t('rate', lang)}")
    console.print(table)
    if report.reasons:
        console.print(f"{t('reasons', lang)}: " + ", ".join(f"{k}={v}" for k, v in sorted(report.reasons.items())))


def iso_array(us: np.ndarray, tz: timezone) -> np.ndarray:
    """`iso` over an array of UTC microseconds (for the display offset `tz`), as an object array of str."""
    offset = tz.utcoffset(None) or timedelta(0)
    local = (np.asarray(us, dtype=np.int64) + offset // timedelta(microseconds=1)).astype("datetime64[us]")
    suffix = datetime(2000, 1, 1, tzinfo=tz).isoformat()[19:]  # "+07:00", as isoformat writes the offset
    out = np.char.add(np.datetime_as_string(local, unit="s"), suffix).astype(object)
    fraction = np.asarray(us) % 1_000_000 != 0
    if fraction.any():
        out[fraction] = np.char.add(np.datetime_as_string(local[fraction], unit="us"), suffix).astype(object)
    return out


def trace_doc_from_rows(header: dict, rows: Mapping[str, np.ndarray], tz: timezone) -> dict:
    """A stored case (its `header`: case, case_id, window, rules) with its contacts from its stored exposure
    rows (`qrtrace.trace_exposures`, ordered by hop, first exposure, person, then the exposure's start, venue,
    source and end): the document `trace_dict` makes, with pseudonyms as they were stored."""
    n = len(rows["person"])
    person = rows["person"]
    heads = np.flatnonzero(np.r_[True, person[1:] != person[:-1]]) if n else np.empty(0, dtype=np.int64)
    ends = np.r_[heads[1:], n].astype(np.int64) if n else heads  # no rows: no contacts (not one empty one)
    first, start, end = (iso_array(rows[k], tz) for k in ("first_exposure_us", "start_us", "end_us"))
    overlap = (rows["overlap_us"] / 60_000_000).tolist()
    venue, source = rows["venue_id"], rows["source_person"]
    hop, source_hop = rows["hop"].tolist(), rows["source_hop"].tolist()
    tiered = header.get("rule") is not None
    risk = [TIERS[r] for r in rows["risk"].tolist()] if tiered and "risk" in rows else None
    contacts = []
    for h, e in zip(heads.tolist(), ends.tolist(), strict=True):
        exposures = [{"venue_id": venue[i], "start": start[i], "end": end[i],
                      "overlap_minutes": round(overlap[i], 2), "source_person_id": source[i],
                      "source_hop": source_hop[i]} | ({"risk": risk[i]} if risk else {}) for i in range(h, e)]
        contact = {"person_id": person[h], "hop": hop[h], "first_exposure": first[h]}
        if risk:
            contact["risk"] = "close" if any(x["risk"] == "close" for x in exposures) else "casual"
        contacts.append({**contact, "exposures": exposures})
    return {**header, "contacts": contacts} | ({"tiers": tier_counts(contacts)} if risk else {})


def tier_counts(contacts: Iterable[dict]) -> dict[str, int]:
    """{"close": n, "casual": m}: how many contacts of each tier."""
    counts = {"close": 0, "casual": 0}
    for c in contacts:
        if c.get("risk") in counts:
            counts[c["risk"]] += 1
    return counts


def trace_dict(result: TraceResult, ids: dict[str, Identity], tz: timezone) -> dict:
    """The JSON contract of `qrtrace trace --json` (times ISO 8601 with offset)."""
    case = result.case
    tiered = result.rules.risk is not None
    contacts = []
    for c in result.contacts:
        contacts.append(
            {
                "person_id": ids[c.person].identifier,
                "hop": c.hop,
                "first_exposure": iso(c.first_exposure, tz),
            }
            | ({"risk": c.risk} if tiered else {})
            | {
                "exposures": [
                    {
                        "venue_id": e.venue,
                        "start": iso(e.start, tz),
                        "end": iso(e.end, tz),
                        "overlap_minutes": round(e.overlap_us / 60_000_000, 2),
                        "source_person_id": ids[e.source_person].identifier,
                        "source_hop": e.source_hop,
                    }
                    | ({"risk": e.risk} if tiered else {})
                    for e in c.exposures
                ],
            }
        )
    contacts.sort(key=lambda c: (c["hop"], c["first_exposure"], c["person_id"]))
    contacts.sort(key=lambda c: c["hop"])
    r = result.rules
    return {
        "case": ids[case.person].identifier,
        "case_id": case.case_id,
        "window": {"from": iso(case.from_us, tz), "to": iso(case.to_us, tz)},
        "rules": {
            "depth": r.depth,
            "grace_minutes": r.grace_us / 60_000_000,
            "min_overlap_minutes": r.min_overlap_us / 60_000_000,
            "until": iso(r.until_us, tz),
            "sources": r.sources,
        },
        "rule": r.risk.label if r.risk is not None else None,
        "contacts": contacts,
    } | ({"tiers": tier_counts(contacts)} if tiered else {})


TRACE_TABLE_LIMIT = 40  # contacts a trace table shows; --json / --csv hold them all


def trace_tables(
    console: Console,
    doc: dict,
    lang: str,
    tz: timezone,
    venue_names: Mapping[str, str],
    limit: int = TRACE_TABLE_LIMIT,
) -> None:
    """A case's contacts as a table: times as `local_time` in `tz`, each exposure's venue by its registered
    name (`venue_names`: venue_id -> name; an id missing from it is shown alone)."""
    contacts = doc["contacts"]
    window = f"{local_time(doc['window']['from'], tz)} → {local_time(doc['window']['to'], tz)}"
    console.print(f"[bold]{t('cohort', lang)} {escape(doc['case'])}[/] ({window})")
    if not contacts:
        console.print(t("no_contacts", lang))
        return
    counts = {}
    for c in contacts:
        counts[c["hop"]] = counts.get(c["hop"], 0) + 1
    line = "  ".join(f"F{h}: {n}" for h, n in sorted(counts.items()))
    tiered = doc.get("rule") is not None
    if tiered:
        tiers, rule = tier_counts(contacts), doc["rule"]
        line += (f"   {t('risk_close', lang)}: {tiers['close']}  {t('risk_casual', lang)}: {tiers['casual']}"
                 f"   ({t('rule', lang)} {rule['name']} v{rule['version']})")
    console.print(line)
    tier_header = [t("risk", lang)] if tiered else []
    table = Table(t("hop", lang), *tier_header, t("person", lang), t("first_exposure", lang), t("evidence", lang))
    for c in by_tier(contacts)[:limit]:
        ev = c["exposures"][0]
        more = f" (+{len(c['exposures']) - 1})" if len(c["exposures"]) > 1 else ""
        evidence = (
            f"{escape(venue_label(ev['venue_id'], venue_names))} {local_span(ev['start'], ev['end'], tz)}, "
            f"{ev['overlap_minutes']:.0f}′ ← F{ev['source_hop']} {escape(ev['source_person_id'])}{more}"
        )  # names and identifiers are what people typed or scanned: shown as text, never as rich markup
        tier = [t(f"risk_{c['risk']}", lang)] if tiered else []
        table.add_row(f"F{c['hop']}", *tier, escape(c["person_id"]), local_time(c["first_exposure"], tz), evidence)
    console.print(table)
    if len(contacts) > limit:
        console.print(f"… {len(contacts) - limit} more (--json / --csv for all)")


def venue_label(venue_id: str, names: Mapping[str, str]) -> str:
    """`Chợ Sơn Dương (VN4675010)`: the registered name with its id, or the id alone when it has no name."""
    name = names.get(venue_id, "").strip()
    return f"{name} ({venue_id})" if name else venue_id


def by_tier(contacts: list[dict]) -> list[dict]:
    """Close contacts first within each hop (the ones to call first), otherwise in the given order."""
    return sorted(contacts, key=lambda c: (c["hop"], c.get("risk") == "casual"))


def shown_venue_ids(docs: Iterable[dict], limit: int = TRACE_TABLE_LIMIT) -> set[str]:
    """The venues `trace_tables` names for `docs` (`trace_dict`) with the same `limit`: what to look up."""
    return {c["exposures"][0]["venue_id"] for doc in docs for c in by_tier(doc["contacts"])[:limit]}


def combined_cohort(docs: list[dict]) -> list[dict]:
    """Every contact once across cases, at their lowest hop, with the cases and sources that reached them."""
    merged: dict[str, dict] = {}
    for doc in docs:
        for c in doc["contacts"]:
            entry = merged.setdefault(c["person_id"], {"person_id": c["person_id"], "hop": c["hop"],
                                                       "first_exposure": c["first_exposure"], "cases": [],
                                                       "exposures": []})  # fmt: skip
            entry["hop"] = min(entry["hop"], c["hop"])
            if "risk" in c:
                entry["risk"] = "close" if "close" in (entry.get("risk"), c["risk"]) else "casual"
            entry["first_exposure"] = min(entry["first_exposure"], c["first_exposure"])
            entry["cases"].append(doc["case_id"])
            entry["exposures"].extend({**e, "case_id": doc["case_id"]} for e in c["exposures"])
    return sorted(merged.values(), key=lambda c: (c["hop"], c["first_exposure"], c["person_id"]))


CALL_LIST_COLUMNS = ("case", "person_id", "hop", "first_exposure", "venue_id", "start", "end", "overlap_minutes",
                     "source_person_id", "source_hop", "risk", "exposure_risk")  # fmt: skip


def call_list_rows(doc: dict) -> Iterable[list]:
    """A case's call-list rows (CALL_LIST_COLUMNS), close contacts first within each hop, cells escaped."""
    for c in by_tier(doc["contacts"]):
        for e in c["exposures"]:
            yield safe_row([doc["case"], c["person_id"], c["hop"], c["first_exposure"], e["venue_id"], e["start"],
                            e["end"], e["overlap_minutes"], e["source_person_id"], e["source_hop"], c.get("risk", ""),
                            e.get("risk", "")])  # fmt: skip


def write_call_list(path: Path, docs: Iterable[dict]) -> None:
    """One row per exposure; the call list health staff work through. Cells escaped (`safe_cell`: an
    identifier a scanner sent can be a formula), the file 0600 (it holds identifiers)."""
    with private_file(path, newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(CALL_LIST_COLUMNS)
        for doc in docs:
            w.writerows(call_list_rows(doc))


def write_trace_dir(directory: Path, docs: Iterable[dict]) -> list[Path]:
    """One JSON per case (`<case_id>.json`) and the combined cohort (`cohort.json`, `cohort.csv`), all 0600."""
    with TraceFiles(None, directory) as files:
        for doc in docs:
            files.add(doc)
    return files.written


class TraceFiles:
    """A batch trace's files, written as its cases come (a chunk at a time), so a run of many cases never
    holds them all: the call list (`csv_out`, one row per exposure) and, in `out_dir`, `<case_id>.json` per
    case, then `cohort.json` / `cohort.csv`: every contact once, at their lowest hop and earliest first
    exposure, with the cases that reached them and how many exposures (the evidence is in the case files).
    Every file 0600 (identifiers), every spreadsheet cell escaped."""

    def __init__(self, csv_out: Path | None, out_dir: Path | None) -> None:
        self.csv_out, self.out_dir = csv_out, out_dir
        self.written: list[Path] = []
        self._cohort: dict[str, dict] = {}
        self._case_ids: list[str] = []
        self._stack = ExitStack()
        self._calls = None

    def __enter__(self) -> TraceFiles:
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.csv_out is not None:
            fh = self._stack.enter_context(private_file(self.csv_out, newline="", encoding="utf-8"))
            self._calls = csv.writer(fh)
            self._calls.writerow(CALL_LIST_COLUMNS)
        return self

    def add(self, doc: dict) -> None:
        """One case's document (`trace_dict`)."""
        if self._calls is not None:
            self._calls.writerows(call_list_rows(doc))
        if self.out_dir is None:
            return
        self.written.append(write_case_json(self.out_dir, doc))
        self._case_ids.append(doc["case_id"])
        for c in doc["contacts"]:
            entry = self._cohort.setdefault(c["person_id"], {"person_id": c["person_id"], "hop": c["hop"],
                                                             "first_exposure": c["first_exposure"], "cases": [],
                                                             "exposures": 0})  # fmt: skip
            entry["hop"] = min(entry["hop"], c["hop"])
            if "risk" in c:
                entry["risk"] = "close" if "close" in (entry.get("risk"), c["risk"]) else "casual"
            entry["first_exposure"] = min(entry["first_exposure"], c["first_exposure"])
            entry["cases"].append(doc["case_id"])
            entry["exposures"] += len(c["exposures"])

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._stack.__exit__(exc_type, *exc)
        if exc_type is None and self.csv_out is not None:
            self.written.append(self.csv_out)
        if exc_type is None and self.out_dir is not None:
            cohort = sorted(self._cohort.values(), key=lambda c: (c["hop"], c["first_exposure"], c["person_id"]))
            self.written += write_cohort(self.out_dir, self._case_ids, cohort)


def write_case_json(directory: Path, doc: dict) -> Path:
    """`<case_id>.json` in `directory` (the case id made a safe file name)."""
    import re

    name = re.sub(r"[^A-Za-z0-9._-]", "_", doc["case_id"]) or "case"
    return write_json(directory / f"{name}.json", doc)


def write_cohort(directory: Path, case_ids: list[str], cohort: list[dict]) -> list[Path]:
    """`cohort.json` and `cohort.csv`: every contact once across the cases (`exposures`: a count)."""
    written = [write_json(directory / "cohort.json", {"cases": case_ids, "contacts": cohort})]
    with private_file(directory / "cohort.csv", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(("person_id", "hop", "first_exposure", "cases", "exposures"))
        for c in cohort:
            w.writerow(safe_row((c["person_id"], c["hop"], c["first_exposure"], " ".join(c["cases"]),
                                 c["exposures"])))  # fmt: skip
    written.append(directory / "cohort.csv")
    return written


def write_json(path: Path, payload: object) -> Path:
    """`payload` as indented JSON, written 0600 and atomically."""
    import orjson

    with private_file(path, "wb") as fh:
        fh.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    return path


def coverage_dict(report: CoverageReport, tz: timezone) -> dict:
    d = report.to_dict()
    d["as_of"] = iso(report.as_of_us, tz)
    d["since"] = iso(report.since_us, tz)
    return d


COVERAGE_WIDE = 120  # from this console width the coverage table also names the kinds of its silent venues
KINDS_WIDTH = 60  # characters of kinds a row shows (whole names; the rest counted)


def coverage_tables(console: Console, report: CoverageReport, settings: Settings) -> None:
    """The coverage report as tables that fit the console: one line per commune at 80 columns (short headers,
    wrapped at spaces when even they do not fit; silent venues counted); from COVERAGE_WIDE columns the kinds
    of the silent venues are named too."""
    lang, tz = settings.lang, settings.display_tz
    cats = load_categories()
    console.print(
        f"[bold]{t('coverage_title', lang)}[/]  {t('period', lang)}: "
        f"{local_time(report.since_us, tz)} → {local_time(report.as_of_us, tz)}"
    )
    wide = console.width >= COVERAGE_WIDE
    headers = [t(k, lang) for k in ("commune", "registered_short", "active", "active_share", "scans", "people",
                                    "silent_short")]  # fmt: skip
    kinds_by_commune: dict[str, list[str]] = {}
    for v in report.silent_venues:
        kinds_by_commune.setdefault(v.commune_code, []).append(cats[v.category].name(lang))
    rows, styles = [], []
    for c in report.communes:
        rows.append([f"{c.name} ({c.commune_code})", f"{c.registered:,}", f"{c.active_venues:,}",
                     f"{c.active_share:.0%}" if c.registered else "–", f"{c.scans:,}", f"{c.people:,}",
                     f"{len(kinds_by_commune.get(c.commune_code, ())):,}"])  # fmt: skip
        styles.append("bold red" if c.registered and c.scans == 0 else ("yellow" if c.active_share < 0.5 else ""))
    gaps = 3 * (len(headers) - 1 + wide)  # a rule and a space either side between two columns
    widths = fitted_widths(headers, rows, console.width - gaps)
    table = Table(show_edge=False, pad_edge=False)  # the cells are names people typed: Text, never markup
    for i, (header, width) in enumerate(zip(headers, widths, strict=True)):
        table.add_column(header, width=width, justify="left" if i == 0 else "right")
    if wide:
        table.add_column(t("silent_kinds", lang))
        room = min(KINDS_WIDTH, max(20, console.width - gaps - sum(widths)))
        for row, c in zip(rows, report.communes, strict=True):
            silent = kinds_by_commune.get(c.commune_code, [])
            row.append(whole_names([k for k, _ in Counter(silent).most_common()], room, t("more_kinds", lang)))
    for row, style in zip(rows, styles, strict=True):
        table.add_row(*map(Text, row), style=style)
    console.print(table)
    office = Table(show_edge=False, pad_edge=False, title=t("office_title", lang))
    office.add_column(t("office", lang))
    for key in ("registered_short", "active", "scans"):
        office.add_column(t(key, lang), justify="right")
    for o in report.offices:
        office.add_row(o.office_name, f"{o.registered:,}", f"{o.active_venues:,}", f"{o.scans:,}")
    console.print(office)
    zero = [escape(f"{c.name} ({c.commune_code})") for c in report.zero_scan_communes]
    console.print(f"{t('zero_communes', lang)}: {', '.join(zero) if zero else '–'}")
    console.print(f"{t('silent_venues', lang)}: {len(report.silent_venues)}")


def fitted_widths(headers: list[str], rows: list[list[str]], room: int) -> list[int]:
    """Column widths that hold every cell whole, in `room` characters if they can: the headers that save the
    most are wrapped at their spaces (down to their longest word) until the columns fit."""
    cells = [max((cell_len(row[i]) for row in rows), default=0) for i in range(len(headers))]
    widths = [max(c, cell_len(h)) for c, h in zip(cells, headers, strict=True)]
    wrapped = [max(c, *(cell_len(w) for w in h.split())) for c, h in zip(cells, headers, strict=True)]
    for i in sorted(range(len(widths)), key=lambda i: wrapped[i] - widths[i]):
        if sum(widths) <= room:
            break
        widths[i] = wrapped[i]
    return widths


def whole_names(names: list[str], width: int, more: str = "+{n}") -> str:
    """`names` joined with "; " (a category's name can hold commas): as many whole names as fit in `width`
    characters with `more` saying how many were left out (`Chợ; Trường học (+3 more)`), at least the first.
    Never a name cut in two."""

    def shown(k: int) -> str:
        return "; ".join(names[:k]) + (f" ({more.format(n=len(names) - k)})" if k < len(names) else "")

    k = len(names)
    while k > 1 and cell_len(shown(k)) > width:
        k -= 1
    return shown(k)
