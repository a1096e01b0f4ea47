"""The one escaping rule every spreadsheet goes through, and the call-list writers that must never hold a
whole call list nor pass Excel's row limit (issue 10, items 2 and 6). Pure: no store."""

from __future__ import annotations

import csv
import io
import os
import stat
from pathlib import Path

from openpyxl import load_workbook

from qrtrace.api import exports
from qrtrace.spreadsheet import private_file, safe_cell

PAYLOADS = ["=1+2", "=cmd|'/c calc'!A0", "+1", "-2+3", "@SUM(A1)", "\t=x", "\r=x"]


def test_safe_cell_never_leaves_a_formula() -> None:
    for text in PAYLOADS:
        shown = safe_cell(text)
        assert isinstance(shown, str) and shown.startswith("'"), text
    assert safe_cell("a\x00b\x1fc") == "abc" and safe_cell(7) == 7 and safe_cell("0912") == "0912"


def _row(i: int, person: str) -> tuple:
    return ("C1", "=case", 1, person, "+84 912", "t", f"V{i}", "s", "e", 1.5, "@src", 0)


def test_call_list_csv_streams_escaped_rows() -> None:
    chunks = [[_row(i, p) for i, p in enumerate(PAYLOADS)], [_row(9, "plain")]]
    pieces = list(exports.call_list_csv_stream(chunks, "en"))
    assert len(pieces) == 3  # the header, then one piece per chunk: nothing waits for the whole list
    rows = list(csv.reader(io.StringIO(b"".join(pieces).decode("utf-8-sig"))))
    assert rows[0][:3] == ["case_id", "case", "hop"] and len(rows) == 1 + len(PAYLOADS) + 1
    assert not [c for r in rows[1:] for c in r if c.startswith(("=", "+", "-", "@", "\t", "\r"))]


def test_call_list_xlsx_starts_a_new_sheet_before_the_row_limit(tmp_path: Path) -> None:
    path = tmp_path / "calls.xlsx"
    rows = [_row(i, f"p{i}") for i in range(25)]
    assert exports.call_list_xlsx_file([rows[:7], rows[7:]], "en", str(path), sheet_rows=10) == 25
    book = load_workbook(path)
    assert book.sheetnames == ["Call list", "Call list 2", "Call list 3"]
    sheets = [list(ws.iter_rows(values_only=True)) for ws in book.worksheets]
    assert [len(s) for s in sheets] == [10, 10, 8]  # each with its header row, never past the limit
    assert all(s[0][0] == "case_id" for s in sheets)
    data = [r for s in sheets for r in s[1:]]
    assert [r[3] for r in data] == [f"p{i}" for i in range(25)]
    assert {r[1] for r in data} == {"'=case"} and {r[10] for r in data} == {"'@src"}
    assert exports.XLSX_SHEET_ROWS == 1_048_576


def test_private_files_are_0600_from_the_start(tmp_path: Path) -> None:
    target = tmp_path / "ids.csv"
    (tmp_path / "ids.csv.tmp").write_text("stale")
    os.chmod(tmp_path / "ids.csv.tmp", 0o644)
    with private_file(target) as fh:
        assert stat.S_IMODE(os.fstat(fh.fileno()).st_mode) == 0o600
        fh.write("x")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and target.read_text() == "x"
