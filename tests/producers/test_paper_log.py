"""The paper-log reader (pure): every bad cell named by row and column, formulas never run, times read."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime, time, timedelta, timezone

import openpyxl
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qrtrace.producers.paper_log import (
    MAX_UNPACKED_BYTES,
    NotATemplate,
    VenueInfo,
    edge_refusals,
    read_paper_log,
    report_dict,
    template_xlsx,
)

VN = timezone(timedelta(hours=7))
VENUES = {"V1": VenueInfo("Chợ Sơn Dương", ("A", "B")), "V2": VenueInfo("Quán", ())}
DAY = date(2021, 7, 20)
NOW = int(datetime(2021, 7, 25, 12, tzinfo=VN).timestamp() * 1_000_000)
KEY = b"k" * 32
FIRST = 8  # the first data row of the template


def filled(rows: dict[int, dict[str, object]], venue: str | None = "V1", day: object = DAY, **top: object) -> bytes:
    """A template with cells set: rows {sheet row: {column letter: value}}."""
    wb = openpyxl.load_workbook(io.BytesIO(template_xlsx(venue or "", VENUES.get(venue or ""), None)))
    ws = wb.active
    ws["B4"] = day.isoformat() if type(day) is date else day
    for cell, value in top.items():
        ws[cell] = value
    for r, cells in rows.items():
        for col, value in cells.items():
            ws[f"{col}{r}"] = value
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def read(data: bytes, **kw: object):  # type: ignore[no-untyped-def]
    return read_paper_log(data, VENUES, KEY, NOW, **kw)  # type: ignore[arg-type]


def refusal(log, row: int):  # type: ignore[no-untyped-def]
    (r,) = [o for o in log.rows if o.row == row]
    return r.column, r.reason


def records(log) -> list[dict]:  # type: ignore[no-untyped-def]
    return [orjson.loads(line) for line in log.lines]


def test_template_has_venue_date_and_vietnamese_headers() -> None:
    ws = openpyxl.load_workbook(io.BytesIO(template_xlsx("V1", VENUES["V1"], DAY))).active
    assert ws["B2"].value == "V1" and ws["B3"].value == "Chợ Sơn Dương" and ws["B4"].value == "2021-07-20"
    assert [ws.cell(7, c).value for c in range(1, 7)] == [
        "STT", "Số định danh hoặc số điện thoại", "Giờ vào", "Giờ ra", "Khu vực", "Ghi chú"]  # fmt: skip
    assert ws["B8"].number_format == "@" and ws["C8"].number_format == "hh:mm"
    assert ws.print_area and ws["A8"].value == 1
    en = openpyxl.load_workbook(io.BytesIO(template_xlsx(lang="en"))).active
    assert en["B7"].value == "Identifier or phone number" and en["B2"].value is None


def test_a_template_with_formula_like_venue_name_is_not_a_formula() -> None:
    ws = openpyxl.load_workbook(io.BytesIO(template_xlsx("V1", VenueInfo("=HYPERLINK(1)"), DAY))).active
    assert ws["B3"].value == "'=HYPERLINK(1)"


def test_good_rows_give_in_and_out_checkins_in_vietnam_time() -> None:
    at_ten = datetime(2021, 7, 20, 10, 5)  # noqa: DTZ001 - a spreadsheet cell has no zone
    log = read(filled({FIRST: {"B": "0912345678", "C": time(8, 30), "D": "09h15"},
                       FIRST + 1: {"B": "079201000123", "C": "8.30"},
                       FIRST + 2: {"B": "0977000111", "C": at_ten, "E": "A"},
                       FIRST + 3: {"B": "0977000222", "C": "7:05", "D": "7g45"}}))  # fmt: skip
    got = records(log)
    day = "2021-07-20T"
    assert [(r["person_id"], r["direction"], r["event_time"]) for r in got] == [
        ("0912345678", "in", f"{day}08:30:00+07:00"), ("0912345678", "out", f"{day}09:15:00+07:00"),
        ("079201000123", "in", f"{day}08:30:00+07:00"), ("0977000111", "in", f"{day}10:05:00+07:00"),
        ("0977000222", "in", f"{day}07:05:00+07:00"), ("0977000222", "out", f"{day}07:45:00+07:00")]  # fmt: skip
    assert {r["mode"] for r in got} == {"manual"} and {r["venue_id"] for r in got} == {"V1"}
    assert got[3]["zone"] == "A" and "zone" not in got[0]
    assert all(r["scanner_id"].startswith("paper:") for r in got)
    assert not log.refused and log.blank == 200 - 4


@pytest.mark.parametrize(
    ("cells", "column", "reason"),
    [
        ({"C": "8:00"}, "B", "paper_empty_identifier"),
        ({"B": "0912345678", "C": "tám giờ"}, "C", "paper_bad_time"),
        ({"B": "0912345678", "C": "25:00"}, "C", "paper_bad_time"),
        ({"B": "0912345678", "C": "8:00", "D": "8:61"}, "D", "paper_bad_time"),
        ({"B": "0912345678", "D": "9:00"}, "C", "paper_missing_time_in"),
        ({"B": "0912345678", "C": "9:00", "D": "8:00"}, "D", "paper_out_before_in"),
        ({"B": "0912345678", "C": "8:00", "E": "Z"}, "E", "paper_unknown_zone"),
        ({"B": '=HYPERLINK("x")', "C": "8:00"}, "B", "paper_formula"),
        ({"B": "0912345678", "C": "=NOW()"}, "C", "paper_formula"),
        ({"B": "0912345678", "C": "8:00", "F": "=1+1"}, "F", "paper_formula"),
        ({"B": 1.5, "C": "8:00"}, "B", "paper_bad_identifier"),
    ],
)
def test_every_bad_cell_is_named_by_row_and_column(cells: dict, column: str, reason: str) -> None:
    log = read(filled({FIRST: {"B": "0911000000", "C": "7:00"}, FIRST + 3: cells}))
    assert refusal(log, FIRST + 3) == (column, reason)
    assert refusal(log, FIRST) == ("", "")  # the good row still counts
    assert len(log.lines) == 1
    report = report_dict(log, [])
    assert report["refused"][0]["row"] == FIRST + 3 and report["refused"][0]["column"] == column
    assert report["refused"][0]["header"]  # the column's header, as the sheet has it


def test_a_time_in_the_future_is_refused() -> None:
    log = read_paper_log(filled({FIRST: {"B": "0912345678", "C": "8:00", "D": "23:00"}}), VENUES, KEY,
                         int(datetime(2021, 7, 20, 12, tzinfo=VN).timestamp() * 1_000_000))  # fmt: skip
    assert refusal(log, FIRST) == ("D", "paper_time_in_future")


def test_formula_cells_are_never_evaluated() -> None:
    """openpyxl with a cached value: the reader sees the formula, never the cached result."""
    data = filled({FIRST: {"B": '=CONCAT("09","12345678")', "C": "=TIME(8,0,0)"}})
    log = read(data)
    assert refusal(log, FIRST) == ("B", "paper_formula") and not log.lines


@pytest.mark.parametrize(("top", "reason"), [({"B2": None}, "paper_venue_missing"),
                                             ({"B2": "V9"}, "paper_unknown_venue")])  # fmt: skip
def test_a_missing_or_unknown_venue_refuses_every_row(top: dict, reason: str) -> None:
    log = read(filled({FIRST: {"B": "0912345678", "C": "8:00"}, FIRST + 1: {"B": "0912345679", "C": "8:00"}}, **top))
    assert [(o.row, o.column, o.reason) for o in log.rows] == [(FIRST, "B", reason), (FIRST + 1, "B", reason)]


@pytest.mark.parametrize(("day", "reason"), [(None, "paper_date_missing"), ("hôm qua", "paper_bad_date")])
def test_a_missing_or_bad_date_refuses_every_row(day: object, reason: str) -> None:
    log = read(filled({FIRST: {"B": "0912345678", "C": "8:00"}}, day=day))
    assert refusal(log, FIRST) == ("B", reason)


def test_date_cells_and_day_first_text_dates() -> None:
    for day in (datetime(2021, 7, 20), "20/07/2021"):  # noqa: DTZ001 - a spreadsheet cell has no zone
        log = read(filled({FIRST: {"B": "0912345678", "C": "8:00"}}, day=day))
        assert records(log)[0]["event_time"] == "2021-07-20T08:00:00+07:00"


def test_blank_rows_are_counted_not_refused() -> None:
    log = read(filled({FIRST: {"B": "0912345678", "C": "8:00"}, FIRST + 5: {"B": "   "},
                       FIRST + 250: {"B": "0912345670", "C": "9:00"}}))  # fmt: skip
    assert not log.refused and len(log.lines) == 2
    assert log.blank == 250 - 1  # rows 9..257 but the two filled ones
    assert report_dict(log, [])["blank_rows"] == log.blank


def test_a_sheet_reaching_far_down_is_refused_before_its_rows_are_walked() -> None:
    """A tiny file naming a cell a million rows down would make the reader create every cell on the way."""
    with pytest.raises(NotATemplate, match="reaches row 1,048,576"):
        read(filled({FIRST: {"B": "0912345678", "C": "8:00"}, 1_048_576: {"F": " "}}))


def test_scan_ids_are_deterministic_and_keyed() -> None:
    data = filled({FIRST: {"B": "0912345678", "C": "8:00", "D": "9:00"}})
    a, b = records(read(data)), records(read(data))
    assert [r["scan_id"] for r in a] == [r["scan_id"] for r in b]
    assert len({r["scan_id"] for r in a}) == 2
    other = records(read_paper_log(data, VENUES, b"x" * 32, NOW))
    assert other[0]["scan_id"] != a[0]["scan_id"]
    assert "0912345678" not in a[0]["scan_id"]
    # the same person and time, another row of another file: the same scan (imported once)
    moved = records(read(filled({FIRST + 7: {"B": "0912345678", "C": "08:00", "D": time(9, 0)}})))
    assert [r["scan_id"] for r in moved] == [r["scan_id"] for r in a]


def test_the_venue_flag_fills_a_blank_venue_and_refuses_another() -> None:
    data = filled({FIRST: {"B": "0912345678", "C": "8:00"}}, venue=None)
    assert records(read(data, venue_id="V2"))[0]["venue_id"] == "V2"
    with pytest.raises(NotATemplate, match="V1"):
        read(filled({FIRST: {"B": "0912345678", "C": "8:00"}}), venue_id="V2")


def test_a_file_that_is_not_a_template() -> None:
    with pytest.raises(NotATemplate, match="not an XLSX"):
        read(b"venue_id,name\n")
    wb = openpyxl.Workbook()
    wb.active["A1"] = "hello"
    buf = io.BytesIO()
    wb.save(buf)
    with pytest.raises(NotATemplate, match="not a paper-log template"):
        read(buf.getvalue())


def test_edge_refusals_name_the_row_and_the_time_column() -> None:
    log = read(filled({FIRST: {"B": "0912345678", "C": "8:00", "D": "9:00"}, FIRST + 1: {"B": "0912", "C": "8:00"}}))
    out_sid = records(log)[1]["scan_id"]
    refused = edge_refusals(log, [(out_sid, "event_time_too_old", "older than 21 days")])
    assert [(r.row, r.column, r.reason) for r in refused] == [(FIRST, "D", "event_time_too_old")]
    report = report_dict(log, refused)
    assert report["accepted_rows"] == 1 and report["refused_rows"] == 1 and report["checkins"] == 1


times = st.builds(time, st.integers(0, 22), st.integers(0, 59))
people = st.lists(st.tuples(st.from_regex(r"0[35789][0-9]{8}", fullmatch=True), times,
                            st.one_of(st.none(), st.integers(1, 59)),
                            st.sampled_from(["time", "text", "h"])),
                  min_size=1, max_size=12)  # fmt: skip


@settings(max_examples=25, deadline=None)
@given(people)
def test_any_valid_rows_round_trip(rows: list) -> None:
    """Template -> filled (as Excel times or typed text) -> read: one `in` per row, one `out` if given."""
    cells, want = {}, []
    for i, (phone, t_in, stay, kind) in enumerate(rows):
        t_out = (datetime.combine(DAY, t_in) + timedelta(minutes=stay)).time() if stay else None
        fmt = {"time": lambda t: t, "text": lambda t: f"{t.hour}:{t.minute:02d}",
               "h": lambda t: f"{t.hour:02d}h{t.minute:02d}"}[kind]  # fmt: skip
        cells[FIRST + i] = {"B": phone, "C": fmt(t_in), **({"D": fmt(t_out)} if t_out else {})}
        want.append((phone, "in", f"2021-07-20T{t_in:%H:%M}:00+07:00"))
        if t_out:
            want.append((phone, "out", f"2021-07-20T{t_out:%H:%M}:00+07:00"))
    log = read(filled(cells))
    assert not log.refused
    assert [(r["person_id"], r["direction"], r["event_time"]) for r in records(log)] == want


def test_a_sheet_that_unpacks_too_large_is_refused_before_it_is_read() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * (MAX_UNPACKED_BYTES + 1))
    assert len(buf.getvalue()) < 2 * 2**20  # small on the wire
    with pytest.raises(NotATemplate, match="unpacks to over"):
        read(buf.getvalue())
