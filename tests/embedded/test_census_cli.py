"""The deployment census end to end through the CLI and chDB: `qrtrace census import` (bad rows reported by
row and column, exit 1, good rows kept), `census link` and the venue file's establishment_id column, then
`qrtrace report coverage --json` equal to a hand-computed fixture, with and without a census."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openpyxl import Workbook

from tests.embedded.conftest import REPLAY_2021

pytestmark = pytest.mark.embedded

VENUES = """venue_id,name,category,commune_code,capacity
CHO-1,Chợ Sơn Dương,market,02536,800
NH-1,Nhà hàng Suối,restaurant,02536,60
TR-1,Trường Tiểu học,school,02536,500
QB-1,Quán bar Sao,bar,02539,40
"""
# Commune 02536 has a census (rows 2-5 good, row 6 refused); 02539 has none.
CENSUS = [
    ["Mã cơ sở", "Tên cơ sở", "Loại hình", "Mã xã", "Địa chỉ", "Mã địa điểm"],
    ["CS1", "Chợ Sơn Dương", "Chợ đầu mối, chợ dân sinh", "02536", "Tổ 1", "CHO-1"],
    ["CS2", "Nhà hàng Suối", "restaurant", "02536", "Tổ 2", ""],
    ["CS3", "Karaoke Hoa", "Karaoke", "02536", "Tổ 3", ""],
    ["CS4", "Tạp hoá Lan", "Essential-services shop", "02536", '=A1&"x"', ""],
    ["CS5", "Không rõ", "tàu vũ trụ", "02536", "Tổ 5", ""],
]
AS_OF = "2021-07-20T12:00:00+07:00"


def checkins() -> str:
    rows = [("s1", "CHO-1", "0912000001", 5), ("s2", "CHO-1", "0912000002", 6), ("s3", "QB-1", "0912000003", 7)]
    return "".join(
        json.dumps(
            {
                "scan_id": s,
                "venue_id": v,
                "person_id": p,
                "direction": "in",
                "event_time": f"2021-07-20T08:{m:02d}:00+07:00",
                "mode": "venue_qr",
                "scanner_id": "S1",
            }
        )
        + "\n"
        for s, v, p, m in rows
    )


def coverage(cli, store: Path) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(cli("report", "coverage", "--json", "--as-of", AS_OF, store=store).stdout)


def cell(report: dict, commune: str, category: str) -> dict:
    return next(c for c in report["cells"] if c["commune_code"] == commune and c["category"] == category)


def commune(report: dict, code: str) -> dict:
    return next(c for c in report["communes"] if c["commune_code"] == code)


def office(report: dict, code: str) -> dict:
    return next(o for o in report["offices"] if o["office"] == code)


C = ("registered", "active_venues", "scans", "people", "required", "required_registered")


def test_census_import_and_coverage_with_and_without_census(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "store"
    (tmp_path / "venues.csv").write_text(VENUES, encoding="utf-8")
    cli("venues", "import", str(tmp_path / "venues.csv"), store=store)
    (tmp_path / "checkins.jsonl").write_text(checkins(), encoding="utf-8")
    cli("ingest", str(tmp_path / "checkins.jsonl"), store=store, env=REPLAY_2021)

    before = coverage(cli, store)  # no census anywhere: today's report
    assert before["census_communes"] == [] and before["unregistered"] == []
    assert all(c["census"] is False and c["required"] == 0 for c in before["communes"])
    assert tuple(commune(before, "02536")[k] for k in C) == (3, 1, 2, 2, 0, 0)
    assert tuple(commune(before, "02539")[k] for k in C) == (1, 1, 1, 1, 0, 0)
    assert tuple(cell(before, "02536", "market")[k] for k in C) == (1, 1, 2, 2, 0, 0)

    wb = Workbook()
    for row in CENSUS:
        wb.active.append(row)
    wb.save(tmp_path / "census.xlsx")
    proc = cli("census", "import", str(tmp_path / "census.xlsx"), store=store, check=False)
    assert proc.returncode == 1, proc.stderr
    refused = [line for line in proc.stderr.splitlines() if line.strip()]
    assert refused == [
        "Dòng 6, cột C (Loại hình): unknown category 'tàu vũ trụ' (a code such as restaurant, or its "
        "Vietnamese or English name)"
    ]
    assert "Traceback" not in proc.stderr and "4" in proc.stdout
    again = cli("census", "import", str(tmp_path / "census.xlsx"), "--json", store=store, check=False)  # idempotent
    assert json.loads(again.stdout)["accepted"] == 4 and again.returncode == 1
    cli("census", "link", "NH-1", "CS2", store=store)  # the officer confirms NH-1 is CS2

    after = coverage(cli, store)
    # Hand-computed: 02536 must deploy CS1..CS4 (market, restaurant, karaoke, essential_shop); CS1 (CHO-1) and
    # CS2 (NH-1) are registered; TR-1 (school) is registered but not in the census; CHO-1 scanned twice.
    assert after["census_communes"] == ["02536"]
    assert tuple(commune(after, "02536")[k] for k in C) == (3, 1, 2, 2, 4, 2)
    assert commune(after, "02536")["census"] is True
    assert tuple(cell(after, "02536", "market")[k] for k in C) == (1, 1, 2, 2, 1, 1)
    assert tuple(cell(after, "02536", "restaurant")[k] for k in C) == (1, 0, 0, 0, 1, 1)
    assert tuple(cell(after, "02536", "school")[k] for k in C) == (1, 0, 0, 0, 0, 0)
    assert tuple(cell(after, "02536", "karaoke")[k] for k in C) == (0, 0, 0, 0, 1, 0)
    assert tuple(cell(after, "02536", "essential_shop")[k] for k in C) == (0, 0, 0, 0, 1, 0)
    # 02539 has no census: exactly today's numbers, and the flag says so
    assert commune(after, "02539") == commune(before, "02539")
    assert tuple(commune(after, "02539")[k] for k in (*C, "census")) == (1, 1, 1, 1, 0, 0, False)
    assert tuple(
        office(after, "commune_committee")[k]
        for k in ("registered", "active_venues", "scans", "required", "required_registered")
    ) == (3, 2, 3, 4, 2)
    assert tuple(office(after, "education_and_labour_offices")[k] for k in ("registered", "required")) == (1, 0)
    assert after["unregistered"] == [
        {
            "establishment_id": "CS4",
            "name": "Tạp hoá Lan",
            "address": '=A1&"x"',
            "category": "essential_shop",
            "commune_code": "02536",
        },  # a formula cell is its text, never evaluated
        {
            "establishment_id": "CS3",
            "name": "Karaoke Hoa",
            "address": "Tổ 3",
            "category": "karaoke",
            "commune_code": "02536",
        },
    ]
    # every number of the report without the census is unchanged by it (registered, active, scans, people)
    for b, a in zip(before["cells"], after["cells"], strict=True):
        assert [b[k] for k in C[:4]] == [a[k] for k in C[:4]]

    text = cli("report", "coverage", "--as-of", AS_OF, store=store).stdout
    assert "Trung Yên (02539)" in text.split("Xã chưa có danh sách cơ sở")[1]
    assert "Cơ sở chưa đăng ký (cần đến tận nơi): 2" in text
    listed = json.loads(cli("census", "list", "--unregistered", "--json", store=store).stdout)
    assert [e["establishment_id"] for e in listed] == ["CS3", "CS4"]


def test_a_venue_file_links_by_establishment_id_or_registers_nothing(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "store"
    (tmp_path / "census.csv").write_text(
        "establishment_id,name,category,commune_code,address\nCS1,Chợ,market,02536,Tổ 1\n", encoding="utf-8"
    )
    cli("census", "import", str(tmp_path / "census.csv"), store=store)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "venue_id,name,category,commune_code,capacity,establishment_id\nV1,Chợ,market,02536,80,CS9\n", encoding="utf-8"
    )
    proc = cli("venues", "import", str(bad), store=store, check=False)
    assert proc.returncode == 1 and "establishment CS9 is not in the census of commune 02536" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert json.loads(cli("census", "list", "--json", store=store).stdout)[0]["venue_id"] == ""
    good = tmp_path / "good.csv"
    good.write_text(
        "venue_id,name,category,commune_code,capacity,establishment_id\nV1,Chợ,market,02536,80,CS1\n", encoding="utf-8"
    )
    cli("venues", "import", str(good), store=store)
    assert json.loads(cli("census", "list", "--json", store=store).stdout)[0]["venue_id"] == "V1"
    report = coverage(cli, store)
    assert tuple(commune(report, "02536")[k] for k in ("registered", "required", "required_registered")) == (1, 1, 1)
    audit = cli("audit", "verify", store=store)
    assert audit.returncode == 0
