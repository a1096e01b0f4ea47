"""The deployment census parser (qrtrace/domain/census.py): CSV and XLSX, English and Vietnamese headers, every
bad row reported by its row and column, formula cells kept as text, links kept on re-import, suggestions."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from qrtrace.domain.census import (
    MAX_COLUMNS,
    MAX_ROWS,
    Establishment,
    census_csv,
    demo_census,
    keep_links,
    normalise,
    parse_census,
    read_table,
    suggest_matches,
)
from qrtrace.errors import InputError

COMMUNES = {"02536", "02539", "02542"}
VENUES = {"V-CHO": "02539", "V-SD": "02536"}
EN = "establishment_id,name,category,commune_code,address,venue_id\n"


def parse(text: str, area: set[str] | None = None, linked: dict | None = None):  # type: ignore[no-untyped-def]
    return parse_census(read_table(text.encode()), "census.csv", COMMUNES, area, VENUES, linked)


def test_a_good_english_csv_is_read_whole() -> None:
    result = parse(EN + "CS1,Chợ Trung Yên,market,02539,Thôn 1,V-CHO\nCS2,Quán Hà,restaurant,02539,Thôn 2,\n")
    assert result.refused == []
    assert result.accepted == [
        Establishment("CS1", "Chợ Trung Yên", "market", "02539", "Thôn 1", "V-CHO"),
        Establishment("CS2", "Quán Hà", "restaurant", "02539", "Thôn 2", ""),
    ]


@pytest.mark.parametrize(
    "header",
    [
        "Mã cơ sở,Tên cơ sở,Loại hình,Mã xã,Địa chỉ,Mã địa điểm",
        "MA CO SO,TEN CO SO,LOAI HINH,MA XA,DIA CHI,MA DIA DIEM",
        "ma_co_so;ten co so;loai hinh;ma xa;dia chi;ma dia diem",
        " Mã Cơ Sở , Tên Cơ Sở , Loại Hình , Mã Xã , Địa Chỉ , Mã Địa Điểm ",
    ],
)
def test_vietnamese_headers_with_or_without_diacritics_in_any_case(header: str) -> None:
    sep = ";" if ";" in header else ","
    rows = [
        header,
        sep.join(["CS1", "Chợ", "Chợ đầu mối, chợ dân sinh", "02539", "Thôn 1", "V-CHO"]),
        sep.join(["CS2", "Quán", "RESTAURANT", "02539", "Thôn 2", ""]),
    ]
    if sep == ",":
        rows[1] = 'CS1,Chợ,"Chợ đầu mối, chợ dân sinh",02539,Thôn 1,V-CHO'
    result = parse("\n".join(rows) + "\n")
    assert result.refused == []
    assert [(e.establishment_id, e.category, e.venue_id) for e in result.accepted] == [
        ("CS1", "market", "V-CHO"),
        ("CS2", "restaurant", ""),
    ]


@pytest.mark.parametrize(
    "category",
    [
        "karaoke",
        "Karaoke",
        "KARAOKE",
        "Khu tâm linh",
        "khu tam linh",
        "Religious / spiritual site",
        "Cửa hàng cung cấp các dịch vụ thiết yếu",
    ],
)
def test_a_category_is_its_code_or_its_vietnamese_or_english_name(category: str) -> None:
    result = parse(EN + f'CS1,X,"{category}",02539,a,\n')
    assert len(result.accepted) == 1 and result.refused == []


def test_the_venue_id_column_is_optional() -> None:
    result = parse("establishment_id,name,category,commune_code,address\nCS1,Chợ,market,02539,Thôn 1\n")
    assert result.accepted == [Establishment("CS1", "Chợ", "market", "02539", "Thôn 1", "")]


BAD = (
    EN
    + "\n".join(
        [
            "CS1,Chợ,market,02539,Thôn 1,V-CHO",  # row 2: good
            "CS2,,market,02539,Thôn 2,",  # row 3: empty name
            "CS3,Quán,spaceport,02539,Thôn 3,",  # row 4: unknown category
            "CS4,Quán,bar,99999,Thôn 4,",  # row 5: unknown commune
            "CS1,Chợ lại,market,02539,Thôn 1,",  # row 6: duplicate id in the commune
            "CS5,Quán,bar,02539,Thôn 5,V-NONE",  # row 7: venue not registered
            "CS6,Trường,school,02539,Thôn 6,V-SD",  # row 8: venue of another commune
            ",Không mã,bar,02539,Thôn 7,",  # row 9: empty id
            ",,,,,",  # row 10: an empty row is not a row
            "CS7,Quán,bar,02542,Thôn 8,",  # row 11: outside the area (area = 02539 and 02536)
            "CS1,Chợ khác xã,market,02536,Thôn 9,",  # row 12: good (ids are per commune)
            "CS8,Chợ hai,market,02539,Thôn 10,V-CHO",  # row 13: the venue is already linked on row 2
        ]
    )
    + "\n"
)


def test_every_bad_row_is_reported_by_row_and_column_and_the_good_rows_are_kept() -> None:
    result = parse(BAD, area={"02539", "02536"})
    assert [(e.commune_code, e.establishment_id) for e in result.accepted] == [("02539", "CS1"), ("02536", "CS1")]
    got = [(r.row, r.column) for r in result.refused]
    assert got == [
        (3, "B (name)"),
        (4, "C (category)"),
        (5, "D (commune_code)"),
        (6, "A (establishment_id)"),
        (7, "F (venue_id)"),
        (8, "F (venue_id)"),
        (9, "A (establishment_id)"),
        (11, "D (commune_code)"),
        (13, "F (venue_id)"),
    ]
    reasons = [r.reason for r in result.refused]
    assert "name is empty" in reasons[0]
    assert "unknown category 'spaceport'" in reasons[1]
    assert "not a registered commune" in reasons[2]
    assert "also on row 2" in reasons[3]
    # an unknown venue and a venue of another commune get the same sentence: nothing learnt about elsewhere
    assert reasons[4].endswith("is not a registered venue of commune 02539")
    assert reasons[5].endswith("is not a registered venue of commune 02539")
    assert "id is empty" in reasons[6]
    assert "outside your area" in reasons[7]
    assert "also linked on row 2" in reasons[8]
    assert result.rows_read == 11  # the empty row is not counted
    assert result.refused[0].line() == "row 3, column B (name): the name is empty"


def test_a_venue_already_linked_to_another_establishment_in_the_store_is_refused() -> None:
    result = parse(EN + "CS9,Chợ,market,02539,Thôn 1,V-CHO\n", linked={"V-CHO": ("02539", "CS1")})
    assert result.accepted == [] and "already linked to establishment CS1" in result.refused[0].reason
    same = parse(EN + "CS1,Chợ,market,02539,Thôn 1,V-CHO\n", linked={"V-CHO": ("02539", "CS1")})
    assert len(same.accepted) == 1  # re-importing the same link is fine


def test_an_officer_of_another_district_imports_nothing_of_yours() -> None:
    result = parse(BAD, area={"99901", "99902"})
    assert result.accepted == []
    assert len(result.refused) == result.rows_read


@pytest.mark.parametrize("text", ["", "\n\n", "id,name\nCS1,x\n", "establishment_id,name,category,commune_code\n"])
def test_a_file_without_the_required_columns_imports_nothing(text: str) -> None:
    with pytest.raises(InputError, match=r"^census\.csv"):
        parse(text)


def _xlsx(rows: list[list[object]], title_rows: int = 0) -> bytes:
    wb = Workbook()
    ws = wb.active
    for _ in range(title_rows):
        ws.append([])
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_a_good_xlsx_with_vietnamese_headers_and_numeric_codes() -> None:
    data = _xlsx(
        [
            ["Mã cơ sở", "Tên cơ sở", "Loại hình", "Mã xã", "Địa chỉ"],
            [101, "Chợ", "market", 2539.0, "Thôn 1"],
            ["CS2", "Quán", "Quán bar", "02539", "Thôn 2"],
        ]
    )
    table = read_table(data, "census.xlsx")
    table[1][3] = table[1][3].zfill(5)  # a spreadsheet drops the leading zero of a numeric code; see below
    result = parse_census(table, "census.xlsx", COMMUNES, None, VENUES)
    assert [(e.establishment_id, e.category, e.commune_code) for e in result.accepted] == [
        ("101", "market", "02539"),
        ("CS2", "bar", "02539"),
    ]


def test_a_numeric_commune_code_without_its_leading_zero_is_reported_not_guessed() -> None:
    data = _xlsx(
        [["establishment_id", "name", "category", "commune_code", "address"], ["CS1", "Chợ", "market", 2539, "a"]]
    )
    result = parse_census(read_table(data, "c.xlsx"), "c.xlsx", COMMUNES, None, VENUES)
    assert result.accepted == [] and (result.refused[0].row, result.refused[0].column) == (2, "D (commune_code)")


def test_xlsx_rows_are_numbered_as_the_sheet_shows_them_below_a_title() -> None:
    data = _xlsx(
        [["establishment_id", "name", "category", "commune_code", "address"], ["CS1", "", "market", "02539", "a"]],
        title_rows=2,
    )
    result = parse_census(read_table(data, "c.xlsx"), "c.xlsx", COMMUNES, None, VENUES)
    assert [(r.row, r.column) for r in result.refused] == [(4, "B (name)")]


def test_a_formula_cell_is_never_evaluated_and_stays_text() -> None:
    data = _xlsx(
        [
            ["establishment_id", "name", "category", "commune_code", "address"],
            ["CS1", '=HYPERLINK("http://x","y")', "market", "02539", "=1+1"],
        ]
    )
    result = parse_census(read_table(data, "c.xlsx"), "c.xlsx", COMMUNES, None, VENUES)
    assert result.accepted[0].name == '=HYPERLINK("http://x","y")'
    assert result.accepted[0].address == "=1+1"
    csv_result = parse(EN + "CS1,=cmd|' /C calc'!A0,market,02539,=1+1,\n")
    assert csv_result.accepted[0].name == "=cmd|' /C calc'!A0"


def test_an_unreadable_xlsx_is_one_sentence() -> None:
    with pytest.raises(InputError, match="not a readable XLSX"):
        read_table(b"PK\x03\x04garbage", "c.xlsx")
    with pytest.raises(InputError, match="neither an XLSX workbook nor UTF-8"):
        read_table(b"\xff\xfe\x00bad", "c.csv")


HEADER_LINE = "establishment_id,name,category,commune_code,address,venue_id\n"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(lambda t: (HEADER_LINE + t).encode())))
def test_any_bytes_are_rows_or_one_sentence(data: bytes) -> None:
    """What the API fuzzer found: a bare carriage return inside a field broke the CSV reader."""
    try:
        result = parse_census(read_table(data, "c.csv"), "c.csv", COMMUNES, None, VENUES)
    except InputError as exc:
        assert str(exc).endswith(".") or str(exc).endswith(")")
    else:
        assert all(e.name and e.name.isprintable() for e in result.accepted)


def test_a_reimported_row_without_a_venue_keeps_its_link() -> None:
    stored = {("02539", "CS1"): Establishment("CS1", "Chợ", "market", "02539", "a", "V-CHO")}
    again = keep_links([Establishment("CS1", "Chợ mới", "market", "02539", "b")], stored)
    assert again == [Establishment("CS1", "Chợ mới", "market", "02539", "b", "V-CHO")]


def test_suggestions_are_the_same_commune_unlinked_and_similar_names_first() -> None:
    census = [
        Establishment("CS1", "Quán phở Hà", "restaurant", "02539", "a"),
        Establishment("CS2", "Quán Phở Hà Nội", "bar", "02539", "a"),
        Establishment("CS3", "Quán phở Hà", "restaurant", "02536", "a"),  # another commune
        Establishment("CS4", "Quán phở Hà", "restaurant", "02539", "a", "V-X"),  # already linked
        Establishment("CS5", "Trường mầm non", "school", "02539", "a"),
    ]
    found = suggest_matches("QUÁN PHỞ HÀ", "02539", "restaurant", census)
    assert [e.establishment_id for e, _ in found] == ["CS1", "CS2"]
    assert found[0][1] == 1.0


def test_normalise_drops_diacritics_case_and_punctuation() -> None:
    assert normalise("Đường Số 1, Thôn Đồng") == "duongso1thondong"


def test_the_demo_census_reads_back_and_links_every_venue() -> None:
    from qrtrace.producers.simulator import SimulationConfig, build_district

    district = build_district(SimulationConfig(seed=7, population=300, days=1))
    communes = sorted({v.commune_code for v in district.venues} | {"02536"})
    rows = demo_census(district.venues, communes, 7, always={"02536"})
    back = parse_census(
        read_table(census_csv(rows).encode()),
        "demo",
        set(communes),
        None,
        {v.venue_id: v.commune_code for v in district.venues},
    )
    assert back.refused == [] and back.accepted == rows
    in_census = {e.commune_code for e in rows}
    linked = {e.venue_id for e in rows if e.venue_id}
    assert linked == {v.venue_id for v in district.venues if v.commune_code in in_census}
    assert in_census < set(communes)  # some communes have no census


cell = st.sampled_from(
    [
        "CS1",
        "CS2",
        "",
        "Chợ",
        "market",
        "bar",
        "nope",
        "02539",
        "02536",
        "99999",
        "V-CHO",
        "V-SD",
        "V-NONE",
        "=1+1",
        "Thôn 1",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(cell, min_size=0, max_size=7), max_size=30), st.sampled_from([None, {"02539"}]))
def test_no_row_silently_disappears(rows: list[list[str]], area: set[str] | None) -> None:
    table = [["establishment_id", "name", "category", "commune_code", "address", "venue_id"], *rows]
    result = parse_census(table, "h", COMMUNES, area, VENUES)
    filled = [i + 2 for i, r in enumerate(rows) if any(c.strip() for c in r)]
    assert result.rows_read == len(filled)
    assert len(result.accepted) + len(result.refused) == len(filled)
    assert {r.row for r in result.refused} <= set(filled)
    assert len({(e.commune_code, e.establishment_id) for e in result.accepted}) == len(result.accepted)
    assert all(area is None or e.commune_code in area for e in result.accepted)


def test_a_sheet_padded_to_the_last_column_and_row_is_read_bounded() -> None:
    """A tiny XLSX naming XFD1 and a far row must not pad every row to 16,384 cells or walk a million rows."""
    wb = Workbook()
    ws = wb.active
    ws.append(["establishment_id", "name", "category", "commune_code", "address"])
    ws.append(["CS1", "Quán A", "restaurant", "02536", "Tổ 1"])
    ws["XFD1"] = "x"
    ws["A1048576"] = "y"
    buf = io.BytesIO()
    wb.save(buf)
    table = read_table(buf.getvalue(), "bomb.xlsx")
    assert max(len(r) for r in table) <= MAX_COLUMNS
    assert len(table) <= MAX_ROWS + 2
    with pytest.raises(InputError, match="more than"):
        parse_census(table, "bomb.xlsx", COMMUNES, None, VENUES)
