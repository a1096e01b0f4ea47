"""The deployment census: the establishments a commune must see deploy QR (DESIGN.md "Deployment coverage").

Pure: a census file's bytes (CSV or XLSX) and the reference data in, accepted establishments and a report
of every refused row out. No I/O; `queries/census.py` reads and writes the store.

Decisions:
- Headers in English (`establishment_id,name,category,commune_code,address[,venue_id]`) or Vietnamese
  (`Mã cơ sở, Tên cơ sở, Loại hình, Mã xã, Địa chỉ[, Mã địa điểm]`), with or without diacritics, any case.
- A category is its code or its Vietnamese or English name (diacritics and case ignored).
- Good rows are kept and bad rows reported, each naming its row (as the spreadsheet numbers it) and column
  and why: a bad row never silently disappears, and one mistyped row does not hold back a commune's list.
  A file without the required columns, or that cannot be read, imports nothing (one sentence).
- Cells are read as values: an XLSX formula is never evaluated (openpyxl is opened without `data_only`, so
  a formula cell gives its text, `=...`, which is kept as text); a CSV cell is text as it is.
- A row entirely empty is not a row (spreadsheets end with some); it is neither imported nor refused.
"""

from __future__ import annotations

import csv
import difflib
import io
import unicodedata
import zipfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from qrtrace.domain.categories import load_categories
from qrtrace.errors import InputError

REQUIRED = ("establishment_id", "name", "category", "commune_code", "address")
OPTIONAL = ("venue_id",)
MAX_ROWS = 100_000
MAX_COLUMNS = 32  # a census has six columns; openpyxl pads every row to the sheet's widest, so read no wider
MAX_UNPACKED_BYTES = 256 * 2**20  # what an XLSX may unpack to (100,000 rows of six columns is ~30 MB)
MAX_CELL = 300  # characters: names and addresses longer than this are refused, not cut

# Normalised header (no diacritics, lower case, letters and digits only) -> column.
HEADER_ALIASES: dict[str, str] = {
    "establishmentid": "establishment_id", "macoso": "establishment_id", "masocoso": "establishment_id",
    "name": "name", "tencoso": "name", "ten": "name",
    "category": "category", "loaihinh": "category", "loaihinhcoso": "category",
    "communecode": "commune_code", "maxa": "commune_code", "maxaphuong": "commune_code",
    "maxaphuongthitran": "commune_code",
    "address": "address", "diachi": "address",
    "venueid": "venue_id", "madiadiem": "venue_id",
}  # fmt: skip
HEADERS_VI = {"establishment_id": "Mã cơ sở", "name": "Tên cơ sở", "category": "Loại hình", "commune_code": "Mã xã",
              "address": "Địa chỉ", "venue_id": "Mã địa điểm"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Establishment:
    """One establishment that must deploy QR; venue_id '' until it is linked to a registered venue."""

    establishment_id: str
    name: str
    category: str
    commune_code: str
    address: str
    venue_id: str = ""


@dataclass(frozen=True, slots=True)
class RefusedRow:
    """A row not imported: its row number as the spreadsheet shows it, the column (header as written in the
    file, with its letter) and why."""

    row: int
    column: str
    reason: str

    def line(self) -> str:
        return f"row {self.row}, column {self.column}: {self.reason}"


@dataclass(frozen=True)
class CensusImport:
    accepted: list[Establishment]
    refused: list[RefusedRow] = field(default_factory=list)
    rows_read: int = 0


def normalise(text: str) -> str:
    """Lower case, no diacritics (đ -> d), letters and digits only: how headers, category names and
    establishment names are compared."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return "".join(ch for ch in plain.lower() if ch.isalnum())


def _words(text: str) -> str:
    """`normalise` keeping single spaces between words (for name similarity)."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(ch if ch.isalnum() else " " for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.lower().split())


def category_lookup() -> dict[str, str]:
    """Normalised code, Vietnamese name or English name -> category code."""
    out: dict[str, str] = {}
    for c in load_categories().values():
        for key in (c.code, c.name_vi, c.name_en):
            out.setdefault(normalise(key), c.code)
    return out


def _cell_text(value: object) -> str:
    """A cell's value as text: numbers without a trailing .0, dates in ISO form, None as ''."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


def read_table(data: bytes, filename: str = "") -> list[list[str]]:
    """The rows of a census file as text cells: XLSX (by its zip signature or name) or CSV (UTF-8, with or
    without BOM; comma, semicolon or tab). Formulas are never evaluated: their text is the cell's value."""
    if data[:4] == b"PK\x03\x04" or filename.lower().endswith((".xlsx", ".xlsm")):
        return _read_xlsx(data, filename)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{filename or 'The census file'} is neither an XLSX workbook nor UTF-8 CSV text.") from None
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    try:
        return [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text, newline=""),
                                                                     delimiter=delimiter)]  # fmt: skip
    except csv.Error as exc:
        raise InputError(f"{filename or 'The census file'} is not a readable CSV ({exc}).") from None


def _read_xlsx(data: bytes, filename: str) -> list[list[str]]:
    from openpyxl import load_workbook

    try:  # a small upload must not unpack into gigabytes (a zip bomb): the sizes its directory declares
        unpacked = sum(i.file_size for i in zipfile.ZipFile(io.BytesIO(data)).infolist())
    except zipfile.BadZipFile:
        raise InputError(f"{filename or 'The census file'} is not a readable XLSX workbook.") from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise InputError(f"{filename or 'The census file'} unpacks to over {MAX_UNPACKED_BYTES // 2**20} MB; "
                         "split it by commune.")  # fmt: skip
    try:
        # read_only streams the sheet; data_only=False (the default) gives a formula's text, never a value.
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise InputError(f"{filename or 'The census file'} is not a readable XLSX workbook ({exc}).") from None
    try:
        ws = wb.worksheets[0]
        rows = []
        # Bounded in both directions: every row counts towards the cap, blank or not, and no row is read wider
        # than MAX_COLUMNS (a cell at XFD1 would otherwise pad every row to 16,384 cells).
        for i, row in enumerate(ws.iter_rows(values_only=True, max_col=MAX_COLUMNS, max_row=MAX_ROWS + 2)):
            if i > MAX_ROWS + 1:
                break
            rows.append([_cell_text(v) for v in row])
        return rows
    finally:
        wb.close()


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _problem(value: str, label: str) -> str | None:
    if len(value) > MAX_CELL:
        return f"the {label} is longer than {MAX_CELL} characters"
    if not value.isprintable():
        return f"the {label} holds control characters"
    return None


def parse_census(
    table: Sequence[Sequence[str]],
    source: str,
    communes: Collection[str],
    area: Collection[str] | None,
    venue_communes: Mapping[str, str],
    linked: Mapping[str, tuple[str, str]] | None = None,
) -> CensusImport:
    """Check every row of `table` (its first non-empty row is the header).

    communes: every registered commune code; area: the communes the importer may write (None: all);
    venue_communes: registered venue_id -> its commune; linked: venue_id -> (commune_code, establishment_id)
    of the census rows already linked to it in the store (a venue belongs to one establishment)."""
    linked = linked or {}
    start = next((i for i, r in enumerate(table) if any(c.strip() for c in r)), None)
    if start is None:
        raise InputError(f"{source} is empty; the header must be {','.join(REQUIRED)}[,venue_id].")
    header = [c.strip() for c in table[start]]
    where: dict[str, int] = {}
    for j, name in enumerate(header):
        column = HEADER_ALIASES.get(normalise(name))
        if column and column not in where:
            where[column] = j
    missing = [c for c in REQUIRED if c not in where]
    if missing:
        named = ", ".join(f"{c} ({HEADERS_VI[c]})" for c in missing)
        raise InputError(f"{source}: the header lacks {named}; expected {','.join(REQUIRED)}[,venue_id] "
                         "or the Vietnamese headers.")  # fmt: skip
    if len(table) - start - 1 > MAX_ROWS:
        raise InputError(f"{source} holds more than {MAX_ROWS:,} rows; split it by commune.")

    def label(column: str) -> str:
        j = where[column]
        return f"{_column_letter(j)} ({header[j]})"

    cats = category_lookup()
    accepted: list[Establishment] = []
    refused: list[RefusedRow] = []
    seen: dict[tuple[str, str], int] = {}
    venues_seen: dict[str, int] = {}
    read = 0
    for i in range(start + 1, len(table)):
        raw = table[i]
        if not any((c or "").strip() for c in raw):
            continue
        read += 1
        row_no = i + 1
        cell = {c: (raw[j].strip() if j < len(raw) and raw[j] else "") for c, j in where.items()}
        bad = _check_row(cell, cats, communes, area, venue_communes, linked)
        if bad is None:
            key = (cell["commune_code"], cell["establishment_id"])
            if key in seen:
                bad = ("establishment_id", f"establishment {key[1]} of commune {key[0]} is also on row {seen[key]}")
            elif cell.get("venue_id") and cell["venue_id"] in venues_seen:
                bad = ("venue_id", f"venue {cell['venue_id']} is also linked on row {venues_seen[cell['venue_id']]}")
        if bad is not None:
            refused.append(RefusedRow(row_no, label(bad[0]), bad[1]))
            continue
        seen[(cell["commune_code"], cell["establishment_id"])] = row_no
        if cell.get("venue_id"):
            venues_seen[cell["venue_id"]] = row_no
        accepted.append(Establishment(cell["establishment_id"], cell["name"], cats[normalise(cell["category"])],
                                      cell["commune_code"], cell["address"], cell.get("venue_id", "")))  # fmt: skip
    return CensusImport(accepted, refused, read)


def _check_row(
    cell: Mapping[str, str],
    cats: Mapping[str, str],
    communes: Collection[str],
    area: Collection[str] | None,
    venue_communes: Mapping[str, str],
    linked: Mapping[str, tuple[str, str]],
) -> tuple[str, str] | None:
    """(column, why) of the first problem of one row, or None."""
    ident, commune = cell["establishment_id"], cell["commune_code"]
    if not ident:
        return "establishment_id", "the establishment id is empty"
    if len(ident) > 64 or (problem := _problem(ident, "establishment id")):
        return "establishment_id", "the establishment id is longer than 64 characters" if len(ident) > 64 else problem
    if not cell["name"]:
        return "name", "the name is empty"
    for column, what in (("name", "name"), ("address", "address")):
        if problem := _problem(cell[column], what):
            return column, problem
    if normalise(cell["category"]) not in cats:
        return "category", (f"unknown category {cell['category'][:60]!r} (a code such as restaurant, or its "
                            "Vietnamese or English name)")  # fmt: skip
    if not commune:
        return "commune_code", "the commune code is empty"
    if commune not in communes:
        return "commune_code", f"commune {commune[:20]!r} is not a registered commune"
    if area is not None and commune not in area:
        return "commune_code", f"commune {commune} is outside your area"
    venue = cell.get("venue_id", "")
    if venue:
        if venue_communes.get(venue) != commune:
            # One sentence whether the venue is unknown or elsewhere: an import must not tell an officer which
            # venue ids exist, or where (docs/security.md, Disclosure).
            return "venue_id", f"venue {venue[:64]!r} is not a registered venue of commune {commune}"
        owner = linked.get(venue)
        if owner is not None and owner != (commune, ident):
            return "venue_id", f"venue {venue} is already linked to establishment {owner[1]} of commune {owner[0]}"
    return None


def keep_links(incoming: Iterable[Establishment], stored: Mapping[tuple[str, str], Establishment]
               ) -> list[Establishment]:  # fmt: skip
    """A re-imported row without a venue_id keeps the link it has in the store (the officer linked it since
    the spreadsheet was written), so re-importing an older file never unlinks a registered venue."""
    out = []
    for e in incoming:
        before = stored.get((e.commune_code, e.establishment_id))
        if not e.venue_id and before is not None and before.venue_id:
            e = Establishment(e.establishment_id, e.name, e.category, e.commune_code, e.address, before.venue_id)
        out.append(e)
    return out


def suggest_matches(venue_name: str, venue_commune: str, venue_category: str,
                    establishments: Iterable[Establishment], limit: int = 5,
                    threshold: float = 0.5) -> list[tuple[Establishment, float]]:  # fmt: skip
    """Establishments a newly registered venue may be: same commune, not yet linked, ranked by how alike the
    normalised names are (difflib's ratio; the same category adds 0.2). The officer confirms one."""
    target = _words(venue_name)
    scored = []
    for e in establishments:
        if e.commune_code != venue_commune or e.venue_id:
            continue
        score = difflib.SequenceMatcher(None, target, _words(e.name)).ratio() + (0.2 if e.category == venue_category
                                                                                  else 0.0)  # fmt: skip
        if score >= threshold:
            scored.append((e, round(min(score, 1.0), 3)))
    scored.sort(key=lambda p: (-p[1], p[0].establishment_id))
    return scored[:limit]


def refused_report(result: CensusImport) -> list[str]:
    """The refused rows, one line each, in the file's order."""
    return [r.line() for r in result.refused]


_DEMO_KINDS = (("essential_shop", "Cửa hàng tạp hoá"), ("restaurant", "Quán ăn"), ("karaoke", "Karaoke"),
               ("massage_beauty", "Tiệm cắt tóc, làm đẹp"), ("gym", "Phòng tập"), ("office", "Trụ sở thôn"),
               ("religious_site", "Chùa"))  # fmt: skip


def demo_census(venues: Iterable[object], communes: Sequence[str], seed: int, always: Collection[str] = (),
                every: int = 5) -> list[Establishment]:  # fmt: skip
    """The demo district's census: every registered venue as an establishment linked to it, and one to four
    establishments per commune not registered yet; every `every`-th commune (sorted, except those in `always`)
    has no census, so the demo shows both kinds of commune. Deterministic in `seed`."""
    import random

    rng = random.Random(seed)
    by_commune: dict[str, list] = {}
    for v in venues:
        by_commune.setdefault(v.commune_code, []).append(v)  # type: ignore[attr-defined]
    out: list[Establishment] = []
    for i, commune in enumerate(sorted(communes)):
        if i % every == every - 1 and commune not in always:
            continue
        n = 0
        for v in sorted(by_commune.get(commune, []), key=lambda v: v.venue_id):
            n += 1
            out.append(Establishment(f"CS{commune}-{n:04d}", v.name, v.category, commune,
                                     f"Thôn {rng.randint(1, 12)}, xã {commune}", v.venue_id))  # fmt: skip
        for _ in range(rng.randint(1, 4)):
            n += 1
            category, kind = rng.choice(_DEMO_KINDS)
            out.append(Establishment(f"CS{commune}-{n:04d}", f"{kind} {rng.choice('ABCDEGHKLMNPQSTV')}. {n}",
                                     category, commune, f"Thôn {rng.randint(1, 12)}, xã {commune}"))  # fmt: skip
    return out


def census_csv(rows: Iterable[Establishment]) -> str:
    """A census file in the English header layout (`qrtrace census import` reads it back)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow((*REQUIRED, *OPTIONAL))
    w.writerows((e.establishment_id, e.name, e.category, e.commune_code, e.address, e.venue_id) for e in rows)
    return buf.getvalue()
