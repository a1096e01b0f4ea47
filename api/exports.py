"""Files people send on: call lists and the coverage report as CSV (UTF-8 with BOM, so Excel reads the
Vietnamese) and XLSX. Every cell goes through `qrtrace.spreadsheet.safe_cell`. The coverage report is
small (bytes in memory); a call list can hold millions of rows, so it is built a case at a time: CSV as a
stream of chunks, XLSX in openpyxl's write-only mode into a file, a new sheet before Excel's row limit."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone

import numpy as np
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from qrtrace import render
from qrtrace.api.views import CALL_LIST_COLUMNS, Person
from qrtrace.queries.risk import TIERS
from qrtrace.spreadsheet import safe_cell, safe_row

HEADERS = {
    "call_list": {
        "vi": ("Mã ca", "Ca bệnh (F0)", "Mức", "Người tiếp xúc", "Số điện thoại", "Tiếp xúc đầu tiên", "Địa điểm",
               "Bắt đầu", "Kết thúc", "Phút trùng", "Nguồn lây", "Mức nguồn", "Mức nguy cơ", "Nguy cơ lần tiếp xúc"),
        "en": CALL_LIST_COLUMNS,
    },
    "coverage": {
        "vi": ("STT", "Mã xã", "Xã / thị trấn", "Loại hình cơ sở", "Cơ quan quản lý", "Số cơ sở đăng ký",
               "Có quét 24 giờ", "Có quét 7 ngày", "Tỷ lệ có quét 7 ngày", "Lượt quét 24 giờ", "Số người 24 giờ",
               "Số cơ sở phải triển khai", "Cơ sở trong danh sách đã đăng ký", "Có danh sách cơ sở"),
        "en": ("No.", "Commune code", "Commune", "Venue category", "Overseeing office", "Registered venues",
               "Active 24 h", "Active 7 days", "Active share 7 days", "Scans 24 h", "People 24 h",
               "Required (census)", "Census establishments registered", "Census"),
    },
    "unregistered": {
        "vi": ("STT", "Mã cơ sở", "Tên cơ sở", "Địa chỉ", "Loại hình", "Mã xã", "Xã / thị trấn"),
        "en": ("No.", "Establishment ID", "Establishment", "Address", "Category", "Commune code", "Commune"),
    },
    "silent": {
        "vi": ("STT", "Mã địa điểm", "Tên địa điểm", "Loại hình", "Xã / thị trấn"),
        "en": ("No.", "Venue ID", "Venue", "Category", "Commune"),
    },
}
TITLES = {
    "coverage": ("BÁO CÁO TIẾN ĐỘ TRIỂN KHAI QUÉT MÃ QR TẠI CÁC ĐỊA ĐIỂM", "QR CHECK-IN DEPLOYMENT REPORT"),
    "as_of": ("Số liệu đến", "Data as of"),
    "area": ("Địa bàn", "Area"),
    "total": ("Cộng", "Total"),
    "all": ("TỔNG CỘNG", "GRAND TOTAL"),
    "sheet_coverage": ("Tiến độ", "Coverage"),
    "sheet_silent": ("Cơ sở chưa quét", "Silent venues"),
    "sheet_call": ("Danh sách gọi", "Call list"),
    "sheet_unregistered": ("Cơ sở chưa đăng ký", "Not registered"),
    "census_yes": ("Có", "Yes"),
    "census_no": ("Chưa có (chỉ tính địa điểm đã đăng ký)", "None (registered venues only)"),
}


def _t(key: str, lang: str) -> str:
    vi, en = TITLES[key]
    return en if lang == "en" else vi


def csv_bytes(header: Sequence[str], rows: Sequence[Sequence[object]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(safe_row(row) for row in rows)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


XLSX_SHEET_ROWS = 1_048_576  # Excel's (and openpyxl's) rows per sheet, the header row included


def call_list_case_rows(
    header: dict, rows: Mapping[str, np.ndarray], people: Mapping[str, Person] | None, tz: timezone
) -> list[tuple]:
    """One case's call-list rows (one per exposure) from its stored exposure rows, people shown as
    `people` says (None: pseudonyms, no phone), ordered by hop, first exposure, person as shown."""

    def shown(p: str) -> str:
        return people[p].shown_as if people and p in people else p

    case = shown(header["case"])
    first, start, end = (render.iso_array(rows[k], tz).tolist() for k in ("first_exposure_us", "start_us", "end_us"))
    tiered = header.get("rule") is not None and "risk" in rows
    risk = [TIERS[r] for r in rows["risk"].tolist()] if tiered else [""] * len(rows["person"])
    close = {p for p, r in zip(rows["person"].tolist(), risk, strict=True) if r == "close"}
    out = [
        (header["case_id"], case, hop, shown(person), (people[person].contact or "") if people and person in people
         else "", f, venue, s, e, round(overlap / 60_000_000, 2), shown(source), source_hop,
         ("close" if person in close else "casual") if tiered else "", r)
        for person, hop, f, venue, s, e, overlap, source, source_hop, r in zip(
            rows["person"].tolist(), rows["hop"].tolist(), first, rows["venue_id"].tolist(), start, end,
            rows["overlap_us"].tolist(), rows["source_person"].tolist(), rows["source_hop"].tolist(), risk,
            strict=True)
    ]  # fmt: skip
    # close contacts first within each hop; stable: a contact's exposures keep the stored order
    out.sort(key=lambda r: (r[2], r[12] == "casual", r[5], r[3]))
    return out


def call_list_csv_stream(chunks: Iterable[Sequence[tuple]], lang: str) -> Iterator[bytes]:
    """The call list as CSV, one piece of bytes per chunk of rows (the BOM and header first)."""
    yield csv_bytes(HEADERS["call_list"][lang], [])
    for rows in chunks:
        buf = io.StringIO()
        csv.writer(buf).writerows(safe_row(row) for row in rows)
        yield buf.getvalue().encode("utf-8")


def call_list_xlsx_file(chunks: Iterable[Sequence[tuple]], lang: str, path: str,
                        sheet_rows: int = XLSX_SHEET_ROWS) -> int:  # fmt: skip
    """Write the call list as XLSX to `path` in write-only mode (rows go to disk as they come); a new sheet
    ("Danh sách gọi 2", ...) with the header again whenever a sheet is full. Returns the data rows."""
    wb = Workbook(write_only=True)
    header = HEADERS["call_list"][lang]
    ws, used, sheets, total = None, sheet_rows, 0, 0
    for rows in chunks:
        for row in rows:
            if used >= sheet_rows:
                sheets += 1
                ws = wb.create_sheet(_t("sheet_call", lang) + (f" {sheets}" if sheets > 1 else ""))
                _write_only_header(ws, header)
                used = 1
            ws.append(safe_row(row))  # type: ignore[union-attr]
            used += 1
            total += 1
    if ws is None:  # no rows: the header alone
        _write_only_header(wb.create_sheet(_t("sheet_call", lang)), header)
    wb.save(path)
    return total


def _write_only_header(ws, header: Sequence[str]) -> None:  # type: ignore[no-untyped-def]
    fill = PatternFill("solid", fgColor="B71C1C")
    for j, name in enumerate(header, start=1):
        ws.column_dimensions[get_column_letter(j)].width = max(10, min(40, len(name) + 4))
    ws.freeze_panes = "A2"
    cells = []
    for name in header:
        cell = WriteOnlyCell(ws, name)
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = fill
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        cells.append(cell)
    ws.append(cells)


def coverage_rows(view: dict, lang: str) -> list[tuple]:
    """The district layout: each commune's categories, then the commune's total; a grand total last."""
    rows: list[tuple] = []
    by_commune: dict[str, list[dict]] = {}
    for c in view["cells"]:
        by_commune.setdefault(c["commune_code"], []).append(c)
    n = 0
    for commune in view["communes"]:
        census = commune.get("census", False)
        flag = _t("census_yes" if census else "census_no", lang)
        for c in by_commune.get(commune["commune_code"], []):
            if not c["registered"] and not c["scans_24h"] and not c.get("required"):
                continue  # categories a commune has none of are left out; its total still counts every venue
            n += 1
            share = c["active_7d"] / c["registered"] if c["registered"] else 0.0
            rows.append((n, c["commune_code"], c["commune_name"], c["category_name"], c["office"], c["registered"],
                         c["active_24h"], c["active_7d"], round(share, 4), c["scans_24h"],
                         c["people_24h"], *_census_cells(c, census, flag)))  # fmt: skip
        rows.append(("", commune["commune_code"], f"{_t('total', lang)} {commune['commune_name']}", "", "",
                     commune["registered"], commune["active_24h"], commune["active_7d"], commune["active_share_7d"],
                     commune["scans_24h"], commune["people_24h"], *_census_cells(commune, census, flag)))  # fmt: skip
    totals = [sum(c[k] for c in view["communes"]) for k in ("registered", "active_24h", "active_7d", "scans_24h")]
    share = totals[2] / totals[0] if totals[0] else 0.0
    with_census = [c for c in view["communes"] if c.get("census")]
    required = [sum(c.get(k, 0) for c in with_census) for k in ("required", "required_registered")]
    rows.append(("", "", _t("all", lang), "", "", totals[0], totals[1], totals[2], round(share, 4), totals[3], "",
                 *(required if with_census else ["", ""]), ""))  # fmt: skip
    return rows


def _census_cells(row: dict, census: bool, flag: str) -> tuple:
    """Required and registered-of-required (blank without a census: 0 would read as "none required"), flag."""
    if not census:
        return "", "", flag
    return row.get("required", 0), row.get("required_registered", 0), flag


def coverage_csv(view: dict, lang: str) -> bytes:
    return csv_bytes(HEADERS["coverage"][lang], coverage_rows(view, lang))


def coverage_xlsx(view: dict, lang: str, area: str, tz: timezone) -> bytes:
    """Title, area and date lines above the table, as a district office sends it to the province."""
    wb = Workbook()
    ws = wb.active
    ws.title = _t("sheet_coverage", lang)
    as_of = datetime.fromtimestamp(view["as_of_us"] / 1e6, tz).strftime("%d/%m/%Y %H:%M")
    ws["A1"] = _t("coverage", lang)
    ws["A1"].font = Font(bold=True, size=14)
    ws["A2"] = safe_cell(f"{_t('area', lang)}: {area}")
    ws["A3"] = f"{_t('as_of', lang)}: {as_of} ({tz.tzname(None) or ''})"
    rows = coverage_rows(view, lang)
    _table(ws, 5, HEADERS["coverage"][lang], rows)
    for i, row in enumerate(rows, start=6):
        if row[0] == "":
            for cell in ws[i]:
                cell.font = Font(bold=True)
        ws.cell(i, 9).number_format = "0.0%"
    silent = wb.create_sheet(_t("sheet_silent", lang))
    _table(silent, 1, HEADERS["silent"][lang], [
        (i, v["venue_id"], v["name"], v["category_name"], v["commune_name"])
        for i, v in enumerate(view["silent_venues"], start=1)
    ])  # fmt: skip
    missing = wb.create_sheet(_t("sheet_unregistered", lang))
    _table(missing, 1, HEADERS["unregistered"][lang], [
        (i, e["establishment_id"], e["name"], e["address"], e["category_name"], e["commune_code"], e["commune_name"])
        for i, e in enumerate(view.get("unregistered", []), start=1)
    ])  # fmt: skip
    return _save(wb)


def _table(ws, top: int, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:  # type: ignore[no-untyped-def]
    fill = PatternFill("solid", fgColor="B71C1C")
    for j, name in enumerate(header, start=1):
        cell = ws.cell(top, j, name)
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = fill
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        ws.column_dimensions[get_column_letter(j)].width = max(10, min(40, len(name) + 4))
    for i, row in enumerate(rows, start=top + 1):
        for j, value in enumerate(row, start=1):
            ws.cell(i, j, safe_cell(value))
    ws.freeze_panes = ws.cell(top + 1, 1)


def _save(wb: Workbook) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
