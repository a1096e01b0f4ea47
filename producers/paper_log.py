"""Paper logs: the spreadsheet a venue fills in for people without phones, and its rows as check-ins (pure).

`template_xlsx` writes the blank sheet (venue and date at the top, then one row per person: identifier or
phone, time in, time out, zone, notes); `read_paper_log` reads a filled one back into check-in records of
the ingest contract (mode `manual`, raw `person_id`: the edge pseudonymises them like any other check-in)
and a report with one entry per row: its check-ins, or why it was refused with its row, column letter and
header. Blank rows are counted as blank, never refused and never silently lost.

Cells are read as values only (openpyxl with `data_only=False`): a formula is refused as a bad cell, never
evaluated (a spreadsheet's cached result is not read either). Times are local (the display zone, +07:00)
on the sheet's date. `scan_id` is a keyed hash of (venue, zone, date, identifier, direction, time), so the
same sheet imported twice stores nothing twice (the store's scan_id idempotency), and the stored id does
not reveal the identifier (a plain hash of a phone number is reversible by brute force).

No I/O: bytes in, records and report out; the shells (`qrtrace paper`, the API) read files and store.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

import orjson

from qrtrace.identity import normalise_identifier
from qrtrace.spreadsheet import safe_cell

VIETNAM = timezone(timedelta(hours=7))
FIRST_HEADER_ROW_SEARCH = 20  # the header row is looked for in the sheet's first rows
MAX_ROWS = 5_000  # data rows read from one sheet; more is refused (one venue's day fits many times over)
MAX_SHEET_ROWS = 2 * MAX_ROWS  # rows a sheet may reach, blank ones included (each is walked, cell by cell)
MAX_UNPACKED_BYTES = 64 * 2**20  # what a sheet may unpack to (a 200-row template is ~40 kB unpacked)
TEMPLATE_ROWS = 200  # numbered rows in a blank template
TEMPLATE_MARK = "qrtrace-paper-log-v1"  # the workbook's keywords property: a template qrtrace wrote

LABELS: dict[str, tuple[str, str]] = {
    "title": ("SỔ GHI NGƯỜI VÀO (NGƯỜI KHÔNG CÓ ĐIỆN THOẠI)", "PAPER CHECK-IN LOG (PEOPLE WITHOUT PHONES)"),
    "venue_id": ("Mã địa điểm", "Venue id"),
    "venue_name": ("Tên địa điểm", "Venue name"),
    "date": ("Ngày (YYYY-MM-DD)", "Date (YYYY-MM-DD)"),
    "instructions": (
        "Mỗi người một dòng: số định danh (CCCD) hoặc số điện thoại; giờ vào và giờ ra theo dạng 08:30; "
        "khu vực nếu địa điểm có khu vực. Không nhập công thức.",
        "One person per row: citizen id or phone number; time in and time out as 08:30; the zone if the "
        "venue has zones. Do not type formulas.",
    ),
    "no": ("STT", "No."),
    "identifier": ("Số định danh hoặc số điện thoại", "Identifier or phone number"),
    "time_in": ("Giờ vào", "Time in"),
    "time_out": ("Giờ ra", "Time out"),
    "zone": ("Khu vực", "Zone"),
    "notes": ("Ghi chú", "Notes"),
    "zones_hint": ("Khu vực của địa điểm", "The venue's zones"),
}
# Refusal reasons (stable codes, kept as the dead letter's reason) and their sentences.
REASONS: dict[str, tuple[str, str]] = {
    "paper_formula": ("ô chứa công thức (không được chạy)", "the cell holds a formula (never run)"),
    "paper_empty_identifier": ("thiếu số định danh hoặc số điện thoại", "no identifier or phone number"),
    "paper_bad_identifier": ("số định danh không hợp lệ", "not a valid identifier"),
    "paper_bad_time": ("giờ không đọc được (viết như 08:30)", "not a time (write it as 08:30)"),
    "paper_missing_time_in": ("thiếu giờ vào", "no time in"),
    "paper_out_before_in": ("giờ ra trước giờ vào", "time out before time in"),
    "paper_time_in_future": ("giờ ở tương lai", "the time is in the future"),
    "paper_unknown_zone": ("địa điểm không có khu vực này", "the venue has no such zone"),
    "paper_date_missing": ("thiếu ngày ở đầu bảng (ô B4)", "the sheet's date (cell B4) is missing"),
    "paper_bad_date": ("ngày ở đầu bảng không đọc được", "the sheet's date (cell B4) is not a date"),
    "paper_venue_missing": ("thiếu mã địa điểm ở đầu bảng (ô B2)", "the sheet's venue id (cell B2) is missing"),
    "paper_unknown_venue": ("mã địa điểm chưa đăng ký", "the venue id is not a registered venue"),
    "paper_too_many_rows": ("quá nhiều dòng trong một bảng", "too many rows in one sheet"),
}
_COLUMNS = ("no", "identifier", "time_in", "time_out", "zone", "notes")  # A..F
_LETTER = dict(zip(_COLUMNS, "ABCDEF", strict=True))
_TIME_TEXT = re.compile(r"^\s*(\d{1,2})\s*(?:[:hHgG.]\s*(\d{1,2})?\s*(?:[:]\s*(\d{1,2}))?)?\s*(?:'|p|ph|phút)?\s*$")
_DATE_TEXT = re.compile(r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})\s*$")
_EXCEL_EPOCH_DAYS = (date(1899, 12, 30), date(1899, 12, 31), date(1900, 1, 1))


class NotATemplate(ValueError):
    """The bytes are not a paper-log spreadsheet (not XLSX, or no header row of the template)."""


def label(key: str, lang: str) -> str:
    """A label of the sheet or the report in `lang` (vi default)."""
    vi, en = LABELS[key]
    return en if lang == "en" else vi


def reason_text(code: str, lang: str) -> str:
    """The sentence for a refusal code in `lang`."""
    vi, en = REASONS[code]
    return en if lang == "en" else vi


@dataclass(frozen=True)
class VenueInfo:
    """What a sheet needs to know of a registered venue."""

    name: str
    zones: tuple[str, ...] = ()


@dataclass(frozen=True)
class RowOutcome:
    """One non-blank row: its check-ins, or the first bad cell (row number, column letter, header, reason)."""

    row: int
    checkins: int = 0  # 1 (time in only) or 2 (in and out); 0 when refused
    column: str = ""
    header: str = ""
    reason: str = ""  # a REASONS code; "" when accepted
    detail: str = ""  # what was in the cell, as far as it is not personal ("" for identifiers)
    identifier: str = ""  # raw, for the shell to pseudonymise (a refused row's dead letter); never reported

    @property
    def refused(self) -> bool:
        return bool(self.reason)


@dataclass(frozen=True)
class PaperLog:
    """A read sheet: the check-in records (JSON lines of the ingest contract) and each row's outcome."""

    venue_id: str
    day: date | None
    lines: list[bytes] = field(default_factory=list)
    line_rows: list[int] = field(default_factory=list)  # the sheet row of each line
    rows: list[RowOutcome] = field(default_factory=list)
    blank: int = 0

    @property
    def refused(self) -> list[RowOutcome]:
        return [r for r in self.rows if r.refused]


# -- the template --------------------------------------------------------------------------------------
def template_xlsx(venue_id: str = "", venue: VenueInfo | None = None, day: date | None = None,
                  lang: str = "vi", rows: int = TEMPLATE_ROWS) -> bytes:  # fmt: skip
    """The blank paper log as XLSX bytes: venue id, name and date filled when given (blank labelled cells
    otherwise), then numbered rows whose cells are text (identifiers keep their leading 0) and time (hh:mm)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, Side
    from openpyxl.worksheet.datavalidation import DataValidation

    wb = Workbook()
    ws = wb.active
    ws.title = "paper-log"
    wb.properties.keywords = TEMPLATE_MARK
    wb.properties.title = label("title", lang)
    ws["A1"] = label("title", lang)
    ws["A1"].font = Font(bold=True, size=13)
    ws.merge_cells("A1:F1")
    head = [("venue_id", safe_cell(venue_id)), ("venue_name", safe_cell(venue.name) if venue else ""),
            ("date", day.isoformat() if day else "")]  # fmt: skip
    for r, (key, value) in enumerate(head, start=2):
        ws.cell(r, 1, label(key, lang)).font = Font(bold=True)
        cell = ws.cell(r, 2, value or None)
        cell.number_format = "@"
        ws.merge_cells(start_row=r, start_column=2, end_row=r, end_column=4)
    if venue is not None and venue.zones:
        ws["E2"] = label("zones_hint", lang)
        ws["F2"] = safe_cell(", ".join(venue.zones))
    ws["A5"] = label("instructions", lang)
    ws["A5"].alignment = Alignment(wrap_text=True, vertical="top")
    ws.merge_cells("A5:F5")
    ws.row_dimensions[5].height = 32
    header_row = 7
    thin = Side(style="thin")
    box = Border(left=thin, right=thin, top=thin, bottom=thin)
    for c, key in enumerate(_COLUMNS, start=1):
        cell = ws.cell(header_row, c, label(key, lang))
        cell.font, cell.border = Font(bold=True), box
        cell.alignment = Alignment(wrap_text=True, horizontal="center", vertical="center")
    ws.row_dimensions[header_row].height = 30
    formats = {"no": "0", "identifier": "@", "time_in": "hh:mm", "time_out": "hh:mm", "zone": "@", "notes": "@"}
    for r in range(header_row + 1, header_row + 1 + rows):
        for c, key in enumerate(_COLUMNS, start=1):
            cell = ws.cell(r, c, r - header_row if key == "no" else None)
            cell.number_format, cell.border = formats[key], box
    if venue is not None and venue.zones and len(",".join(venue.zones)) < 250:
        dv = DataValidation(type="list", formula1='"' + ",".join(venue.zones) + '"', allow_blank=True)
        dv.add(f"E{header_row + 1}:E{header_row + rows}")
        ws.add_data_validation(dv)
    for letter, width in zip("ABCDEF", (6, 30, 10, 10, 14, 24), strict=True):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = f"A{header_row + 1}"
    ws.print_area = f"A1:F{header_row + rows}"
    ws.print_title_rows = f"{header_row}:{header_row}"
    ws.page_setup.orientation = "portrait"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# -- reading a filled sheet -----------------------------------------------------------------------------
def scan_key(pseudonym_key: bytes) -> bytes:
    """The key of paper scan ids, derived from the pseudonym key (so ids are stable for one deployment)."""
    return hmac.new(pseudonym_key, b"qrtrace paper-log scan ids", hashlib.sha256).digest()


def scan_id(key: bytes, venue_id: str, zone: str, day: date, identifier: str, direction: str, minute: str) -> str:
    """The deterministic scan id of one paper check-in (keyed: the identifier cannot be read back from it)."""
    msg = "\x1f".join((venue_id, zone, day.isoformat(), normalise_identifier(identifier), direction, minute))
    return "paper-" + hmac.new(key, msg.encode(), hashlib.sha256).hexdigest()[:32]


def file_digest(data: bytes) -> str:
    """A short digest of the uploaded file: the paper check-ins' scanner id (`paper:<digest>`)."""
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def read_paper_log(
    data: bytes,
    venues: Mapping[str, VenueInfo],
    key: bytes,
    now_us: int,
    *,
    venue_id: str | None = None,
    max_future_us: int = 5 * 60_000_000,
    tz: timezone = VIETNAM,
    lang: str = "vi",
) -> PaperLog:
    """A filled paper log (XLSX bytes) as check-in records and a per-row report. `venues` are the registered
    venues; `venue_id`, when given (the CLI's --venue, the API's path), is the venue the sheet is for: a
    sheet naming another one is NotATemplate. Raises NotATemplate for bytes that are not the template."""
    ws = _sheet(data)
    header_row = _header_row(ws)
    if ws.max_row > header_row + MAX_SHEET_ROWS:  # a tiny file may name a cell a million rows down
        raise NotATemplate(f"The sheet reaches row {ws.max_row:,}; a paper log holds at most {MAX_ROWS:,} rows "
                           "(write one sheet per day with `qrtrace paper template`).")  # fmt: skip
    sheet_venue = _text(ws.cell(2, 2).value)
    if venue_id is not None and sheet_venue and sheet_venue != venue_id:
        raise NotATemplate(f"The sheet is for venue {sheet_venue!r}, not {venue_id!r}.")
    venue = venue_id or sheet_venue
    sheet_problem = ""  # a problem of the top of the sheet: every non-blank row is refused with it
    date_cell = ws.cell(4, 2)
    day, date_problem = _read_date(date_cell.value, date_cell.data_type)
    if not venue:
        sheet_problem = "paper_venue_missing"
    elif venue not in venues:
        sheet_problem = "paper_unknown_venue"
    elif date_problem:
        sheet_problem = date_problem
    info = venues.get(venue)
    scanner = "paper:" + file_digest(data)
    out = PaperLog(venue, day)
    header = {k: _text(ws.cell(header_row, i).value) or label(k, lang) for i, k in enumerate(_COLUMNS, start=1)}
    latest_us = now_us + max_future_us
    seen = blank = 0
    for r, cells in enumerate(ws.iter_rows(min_row=header_row + 1, max_col=len(_COLUMNS)), start=header_row + 1):
        values = {k: (c.value, c.data_type) for k, c in zip(_COLUMNS, cells, strict=False)}
        if all(_blank(values.get(k, (None, "n"))[0]) for k in _COLUMNS[1:]):
            blank += 1
            continue
        seen += 1
        ident_raw = values.get("identifier", (None, "n"))[0]
        ident_text = _identifier_text(ident_raw)
        if seen > MAX_ROWS:
            out.rows.append(RowOutcome(r, column="A", header=header["no"], reason="paper_too_many_rows"))
            continue

        def refuse(col: str, code: str, detail: str = "", r: int = r, ident: str = ident_text or "") -> None:
            out.rows.append(RowOutcome(r, column=_LETTER[col], header=header[col], reason=code, detail=detail,
                                       identifier=ident))  # fmt: skip

        formula = next((k for k in _COLUMNS if _is_formula(*values.get(k, (None, "n")))), None)
        if formula is not None:
            refuse(formula, "paper_formula")
            continue
        if sheet_problem:  # the cell at the top (B2 or B4) is named, on every row it stops
            top = "date" if "date" in sheet_problem else "venue_id"
            out.rows.append(RowOutcome(r, column="B", header=label(top, lang), reason=sheet_problem,
                                       identifier=ident_text or ""))  # fmt: skip
            continue
        if _blank(ident_raw):
            refuse("identifier", "paper_empty_identifier")
            continue
        if ident_text is None or not normalise_identifier(ident_text):
            refuse("identifier", "paper_bad_identifier")
            continue
        assert day is not None and info is not None
        zone = _text(values["zone"][0]) if "zone" in values else ""
        if zone and zone not in info.zones:
            refuse("zone", "paper_unknown_zone", zone[:64])
            continue
        times: dict[str, datetime | None] = {}
        bad = ""
        for col in ("time_in", "time_out"):
            value = values.get(col, (None, "n"))[0]
            when, ok = _read_time(value, day, tz)
            if not ok:
                bad = col
                refuse(col, "paper_bad_time", str(value)[:32])
                break
            times[col] = when
        if bad:
            continue
        t_in, t_out = times["time_in"], times["time_out"]
        if t_in is None:
            refuse("time_in", "paper_missing_time_in")
            continue
        if t_out is not None and t_out < t_in:
            refuse("time_out", "paper_out_before_in", f"{t_in:%H:%M} > {t_out:%H:%M}")
            continue
        late = next((c for c, w in (("time_in", t_in), ("time_out", t_out)) if w is not None
                     and _us(w) > latest_us), None)  # fmt: skip
        if late is not None:
            refuse(late, "paper_time_in_future", f"{times[late]:%Y-%m-%d %H:%M}")
            continue
        n = 0
        for direction, when in (("in", t_in), ("out", t_out)):
            if when is None:
                continue
            minute = when.isoformat(timespec="seconds")
            record = {"scan_id": scan_id(key, venue, zone, day, ident_text, direction, minute), "venue_id": venue,
                      "person_id": ident_text, "direction": direction, "event_time": minute, "mode": "manual",
                      "scanner_id": scanner}  # fmt: skip
            if zone:
                record["zone"] = zone
            out.lines.append(orjson.dumps(record))
            out.line_rows.append(r)
            n += 1
        out.rows.append(RowOutcome(r, checkins=n, identifier=ident_text))
    return PaperLog(out.venue_id, out.day, out.lines, out.line_rows, out.rows, blank)


def _sheet(data: bytes):  # type: ignore[no-untyped-def]
    from openpyxl import load_workbook

    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise NotATemplate("The file is not an XLSX spreadsheet (write one with `qrtrace paper template`).")
    try:  # a small upload must not unpack into gigabytes (a zip bomb): the sizes its directory declares
        unpacked = sum(i.file_size for i in zipfile.ZipFile(io.BytesIO(data)).infolist())
    except zipfile.BadZipFile:
        raise NotATemplate("The file is not a readable XLSX spreadsheet.") from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise NotATemplate(f"The spreadsheet unpacks to over {MAX_UNPACKED_BYTES // 2**20} MB; a paper log is one "
                           "sheet of a few thousand rows.")  # fmt: skip
    try:
        wb = load_workbook(io.BytesIO(data), data_only=False, read_only=False, keep_links=False)
    except Exception as exc:  # openpyxl raises many kinds for a damaged or foreign zip
        raise NotATemplate(f"The file is not a readable XLSX spreadsheet ({type(exc).__name__}).") from None
    return wb.worksheets[0]


def _header_row(ws) -> int:  # type: ignore[no-untyped-def]
    names = {LABELS["identifier"][0].casefold(), LABELS["identifier"][1].casefold()}
    for r in range(1, min(ws.max_row, FIRST_HEADER_ROW_SEARCH) + 1):
        if (_text(ws.cell(r, 2).value) or "").casefold() in names:
            return r
    raise NotATemplate(f"The file is not a paper-log template: no header row with {LABELS['identifier'][0]!r} "
                       "in column B (write one with `qrtrace paper template`).")  # fmt: skip


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: object) -> str:
    if value is None:
        return ""
    return str(value).strip()


def _is_formula(value: object, data_type: str) -> bool:
    """A formula cell, or text a spreadsheet would read as one: refused, never run."""
    if data_type == "f":
        return True
    if value is not None and type(value).__name__ in ("ArrayFormula", "DataTableFormula"):
        return True
    return isinstance(value, str) and value.lstrip().startswith("=")


def _identifier_text(value: object) -> str | None:
    """An identifier cell as text (a number typed in a General cell keeps its digits), None if unusable."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and value >= 0 else None
    if isinstance(value, str):
        text = value.strip().lstrip("'")
        return text if text and len(text) <= 64 and text.isprintable() else (None if text else "")
    return None


def _read_date(value: object, data_type: str) -> tuple[date | None, str]:
    if _blank(value):
        return None, "paper_date_missing"
    if _is_formula(value, data_type):
        return None, "paper_bad_date"
    if isinstance(value, datetime):
        return value.date(), ""
    if isinstance(value, date):
        return value, ""
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text), ""
        except ValueError:
            m = _DATE_TEXT.match(text)  # 20/07/2021: day first, as written in Vietnam
            if m:
                try:
                    return date(int(m.group(3)), int(m.group(2)), int(m.group(1))), ""
                except ValueError:
                    pass
    return None, "paper_bad_date"


def _read_time(value: object, day: date, tz: timezone) -> tuple[datetime | None, bool]:
    """(local datetime on `day`, ok). A blank cell is (None, True). Excel times, datetimes, day fractions
    and text 8:30, 08h30, 8.30, 8g30, 8 are read; a datetime on another day than the epoch keeps its date."""
    if _blank(value):
        return None, True
    t: time | None = None
    if isinstance(value, datetime):
        if value.date() in _EXCEL_EPOCH_DAYS:
            t = value.time()
        else:
            return value.replace(tzinfo=tz) if value.tzinfo is None else value.astimezone(tz), True
    elif isinstance(value, time):
        t = value
    elif isinstance(value, timedelta):
        seconds = int(value.total_seconds())
        t = time(seconds // 3600, seconds % 3600 // 60) if 0 <= seconds < 86400 else None
    elif isinstance(value, bool):
        t = None
    elif isinstance(value, (int, float)):
        if isinstance(value, float) and 0 <= value < 1:  # a day fraction in a General cell
            minutes = round(value * 24 * 60)
            t = time(minutes // 60, minutes % 60) if minutes < 24 * 60 else None
        else:
            t = _time_text(f"{value:.2f}" if isinstance(value, float) else str(value))
    elif isinstance(value, str):
        t = _time_text(value)
    if t is None:
        return None, False
    return datetime.combine(day, t.replace(tzinfo=None), tzinfo=tz), True


def _time_text(text: str) -> time | None:
    m = _TIME_TEXT.match(text)
    if not m:
        return None
    h, mi, s = int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0)
    if h > 23 or mi > 59 or s > 59:
        return None
    return time(h, mi, s)


def _us(when: datetime) -> int:
    return round(when.timestamp() * 1_000_000)


# -- the report -----------------------------------------------------------------------------------------
_EDGE_COLUMN = {"event_time_too_old": "time", "event_time_in_future": "time", "bad_event_time": "time",
                "unknown_zone": "zone", "unknown_venue": "venue"}  # fmt: skip


def edge_refusals(log: PaperLog, letters: list[tuple[str, str, str]], lang: str = "vi") -> list[RowOutcome]:
    """The rows the edge refused after the sheet was read (`letters`: each dead letter's scan_id, reason and
    detail), as row outcomes naming the row and the column (a check-in's time is its time in or out cell)."""
    where: dict[str, tuple[int, str]] = {}
    for line, row in zip(log.lines, log.line_rows, strict=True):
        record = orjson.loads(line)
        where[record["scan_id"]] = (row, record["direction"])
    out = []
    for sid, reason, detail in letters:
        if sid not in where:
            continue
        row, direction = where[sid]
        kind = _EDGE_COLUMN.get(reason, "identifier")
        col = {"time": "time_in" if direction == "in" else "time_out", "zone": "zone"}.get(kind, "identifier")
        if kind == "venue":
            out.append(RowOutcome(row, column="B", header=label("venue_id", lang), reason=reason, detail=detail))
        else:
            out.append(RowOutcome(row, column=_LETTER[col], header=label(col, lang), reason=reason, detail=detail))
    return out


def report_dict(log: PaperLog, refused_by_edge: list[RowOutcome], lang: str = "vi") -> dict:
    """The answer to an import (CLI --json and the API): counts, and every refused row with its row, column,
    header, reason code and sentence. A row the edge refused is refused whatever the sheet said of it."""
    edge_rows = {r.row for r in refused_by_edge}
    refused = sorted([*log.refused, *refused_by_edge], key=lambda r: (r.row, r.column))
    seen: set[int] = set()
    rows = []
    for r in refused:
        if r.row in seen:
            continue  # one entry per row: its first bad cell
        seen.add(r.row)
        message = reason_text(r.reason, lang) if r.reason in REASONS else r.detail or r.reason
        rows.append({"row": r.row, "column": r.column, "header": r.header, "reason": r.reason, "message": message,
                     "cell": r.detail if r.reason in REASONS else ""})  # fmt: skip
    accepted = [r for r in log.rows if not r.refused and r.row not in edge_rows]
    return {
        "venue_id": log.venue_id,
        "date": log.day.isoformat() if log.day else None,
        "rows": len({r.row for r in log.rows}),
        "blank_rows": log.blank,
        "accepted_rows": len(accepted),
        "checkins": sum(r.checkins for r in accepted),
        "refused_rows": len(rows),
        "refused": rows,
    }
