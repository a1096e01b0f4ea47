"""The deployment census over the API: an officer uploads their area's list (CSV or XLSX as the body), rows of
other communes are refused row by row, an officer of another district imports nothing of ours; the coverage
report, its export and the matches/link routes carry the census, each in the caller's area."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook, load_workbook

from qrtrace.api.service import ApiService
from tests.api.conftest import World

pytestmark = pytest.mark.api

HEADER = "Mã cơ sở,Tên cơ sở,Loại hình,Mã xã,Địa chỉ\n"


def _post(client: TestClient, world: World, who: str, body: bytes, ctype: str = "text/csv", **params: str):  # type: ignore[no-untyped-def]
    return client.post("/api/census", content=body, params=params or None,
                       headers={**world.auth(who), "Content-Type": ctype})  # fmt: skip


def _census(service: ApiService, commune: str) -> dict[str, str]:
    with service._lock:
        rows = service.rt.store.query(
            f"SELECT establishment_id, name FROM qrtrace.census FINAL WHERE commune_code = '{commune}'"
        )  # a test constant
    return dict(zip(rows["establishment_id"], rows["name"], strict=True))


def test_a_commune_officer_imports_its_commune_and_other_communes_are_refused_by_row(
    client: TestClient, world: World, service: ApiService
) -> None:
    body = (HEADER + f"API-CS1,Quán Mới,restaurant,{world.commune_code},Tổ 9\n"
            f"API-CS2,Nhà nghỉ lạ,karaoke,{world.other_commune},Tổ 1\n"
            f"API-CS3,,bar,{world.commune_code},Tổ 2\n"
            "API-CS4,Chợ xã Thử,market,99901,Thôn 1\n").encode()  # fmt: skip
    resp = _post(client, world, "commune_officer", body, filename="census-xa.csv")
    assert resp.status_code == 200, resp.text
    got = resp.json()
    assert got["accepted"] == 1 and got["rows_read"] == 4 and got["communes"] == [world.commune_code]
    assert [(r["row"], r["column"]) for r in got["refused"]] == [(3, "D (Mã xã)"), (4, "B (Tên cơ sở)"),
                                                               (5, "D (Mã xã)")]  # fmt: skip
    assert "outside your area" in got["refused"][0]["reason"] and "outside your area" in got["refused"][2]["reason"]
    assert _census(service, world.commune_code)["API-CS1"] == "Quán Mới"
    assert "API-CS2" not in _census(service, world.other_commune)
    cov = client.get("/api/reports/coverage", headers=world.auth("commune_officer")).json()
    assert any(e["establishment_id"] == "API-CS1" for e in cov["unregistered"])
    assert {e["commune_code"] for e in cov["unregistered"]} == {world.commune_code}
    assert cov["communes"][0]["census"] is True and cov["communes"][0]["required"] >= 1


def test_an_officer_of_another_district_imports_nothing_of_ours(client: TestClient, world: World,
                                                                service: ApiService) -> None:  # fmt: skip
    before = _census(service, world.commune_code)
    body = (HEADER + f"EVIL-1,Giả,bar,{world.commune_code},x\nOT-CS1,Chợ xã Thử Một,market,99901,Thôn 1\n").encode()
    got = _post(client, world, "other_district_officer", body).json()
    assert got["accepted"] == 1 and got["communes"] == ["99901"]
    assert [r["row"] for r in got["refused"]] == [2] and "outside your area" in got["refused"][0]["reason"]
    assert _census(service, world.commune_code) == before
    mine = client.get("/api/reports/coverage", headers=world.auth("district_officer")).json()
    assert "99901" not in mine["census_communes"]
    assert not {e["commune_code"] for e in mine["unregistered"]} & {"99901", "99902"}
    theirs = client.get("/api/reports/coverage", headers=world.auth("other_district_officer")).json()
    assert theirs["census_communes"] == ["99901"]
    assert [e["establishment_id"] for e in theirs["unregistered"]] == ["OT-CS1"]


def test_an_xlsx_upload_with_a_formula_keeps_it_as_text(client: TestClient, world: World,
                                                        service: ApiService) -> None:  # fmt: skip
    wb = Workbook()
    wb.active.append(["establishment_id", "name", "category", "commune_code", "address"])
    wb.active.append(["API-X1", '=HYPERLINK("http://evil","x")', "gym", world.commune_code, "Tổ 3"])
    buf = io.BytesIO()
    wb.save(buf)
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    got = _post(client, world, "district_officer", buf.getvalue(), xlsx).json()
    assert got["accepted"] == 1 and got["refused"] == []
    assert _census(service, world.commune_code)["API-X1"].startswith("=HYPERLINK")
    export = client.get("/api/reports/coverage/export", params={"commune": world.commune_code},
                        headers=world.auth("commune_officer"))  # fmt: skip
    book = load_workbook(io.BytesIO(export.content))
    sheet = book["Cơ sở chưa đăng ký"]
    names = [row[2] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert '\'=HYPERLINK("http://evil","x")' in names  # escaped on the way out: never a formula
    header = [c.value for c in book.active[5]]
    assert header[-3:] == ["Số cơ sở phải triển khai", "Cơ sở trong danh sách đã đăng ký", "Có danh sách cơ sở"]


def test_bad_files_are_one_sentence(client: TestClient, world: World) -> None:
    for body, words in ((b"", "body is empty"), (b"id,name\nx,y\n", "the header lacks"),
                        (b"PK\x03\x04nonsense", "not a readable XLSX")):  # fmt: skip
        resp = _post(client, world, "commune_officer", body)
        assert resp.status_code == 400 and words in resp.json()["error"], resp.text


def test_matches_and_link_are_scoped_and_a_registered_venue_links_by_establishment_id(
    client: TestClient, world: World
) -> None:
    me = world.auth("commune_officer")
    body = (HEADER + f"API-L1,Quán cà phê Gió,restaurant,{world.commune_code},Tổ 4\n").encode()
    assert _post(client, world, "commune_officer", body).json()["accepted"] == 1
    venue = {"venue_id": "API-GIO", "name": "Quán Cà Phê Gió", "category": "restaurant",
             "commune_code": world.commune_code, "capacity": 20}  # fmt: skip
    assert client.post("/api/venues", json=venue, headers=me).status_code == 201
    found = client.get("/api/census/matches", params={"venue_id": "API-GIO"}, headers=me).json()["matches"]
    assert found[0]["establishment_id"] == "API-L1" and found[0]["linked"] is False
    linked = client.post("/api/census/link", json={"venue_id": "API-GIO", "establishment_id": "API-L1"}, headers=me)
    assert linked.status_code == 200, linked.text
    again = client.get("/api/census/matches", params={"venue_id": "API-GIO"}, headers=me).json()["matches"]
    assert again == [{**found[0], "score": 1.0, "linked": True}]
    cov = client.get("/api/reports/coverage", headers=me).json()
    assert "API-L1" not in {e["establishment_id"] for e in cov["unregistered"]}
    # registering with an explicit establishment_id links at once; a wrong one registers nothing
    second = (HEADER + f"API-L2,Tiệm sách,essential_shop,{world.commune_code},Tổ 5\n").encode()
    assert _post(client, world, "commune_officer", second).status_code == 200
    wrong = client.post("/api/venues", json={**venue, "venue_id": "API-SACH", "establishment_id": "API-NONE"},
                        headers=me)  # fmt: skip
    assert wrong.status_code == 400 and "not in the census" in wrong.json()["error"]
    assert "API-SACH" not in {v["venue_id"] for v in client.get("/api/venues", headers=me).json()}
    right = client.post("/api/venues", json={**venue, "venue_id": "API-SACH", "establishment_id": "API-L2"},
                        headers=me)  # fmt: skip
    assert right.status_code == 201 and right.json()["establishment_id"] == "API-L2"
    taken = client.post("/api/census/link", json={"venue_id": "API-SACH", "establishment_id": "API-L1"}, headers=me)
    assert taken.status_code == 400 and "already linked" in taken.json()["error"]
    elsewhere = next(v for v in client.get("/api/venues", headers=world.auth("admin")).json()
                     if v["commune_code"] != world.commune_code)  # fmt: skip
    for resp in (client.get("/api/census/matches", params={"venue_id": elsewhere["venue_id"]}, headers=me),
                 client.post("/api/census/link", json={"venue_id": elsewhere["venue_id"], "establishment_id": "API-L1"},
                             headers=me)):  # fmt: skip
        assert resp.status_code == 403 and set(resp.json()) == {"error"}
    audit = client.get("/api/audit", params={"action": "import_census"}, headers=world.auth("admin"))
    assert audit.status_code == 200 and "import_census" in audit.text
