"""Paper logs over the API: the template, the upload's report, who may and who may not, 413."""

from __future__ import annotations

import io
from datetime import date

import openpyxl
import pytest
from fastapi.testclient import TestClient

from qrtrace.producers.paper_log import template_xlsx
from tests.api.conftest import RECENT_DAY, World, counts

pytestmark = pytest.mark.api
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def paper_sheet(venue_id: str, rows: list[tuple[object, ...]], day: str | None = RECENT_DAY) -> bytes:
    """A template of `venue_id` on `day` with rows (identifier, time in, time out[, zone]) from row 8."""
    ws_book = openpyxl.load_workbook(
        io.BytesIO(template_xlsx(venue_id, None, date.fromisoformat(day) if day else None))
    )
    ws = ws_book.active
    for i, row in enumerate(rows):
        for col, value in zip("BCDE", row, strict=False):
            ws[f"{col}{8 + i}"] = value
    buf = io.BytesIO()
    ws_book.save(buf)
    return buf.getvalue()


def upload(client: TestClient, world: World, who: str, venue_id: str, data: bytes, **params: str):  # type: ignore[no-untyped-def]
    return client.post(f"/api/venues/{venue_id}/paper-log", content=data, params=params or None,
                       headers={**world.auth(who), "Content-Type": XLSX})  # fmt: skip


def test_the_template_of_a_venue(client: TestClient, world: World) -> None:
    resp = client.get(f"/api/venues/{world.venue_id}/paper-log/template.xlsx", params={"date": RECENT_DAY},
                      headers=world.auth("venue_owner"))  # fmt: skip
    assert resp.status_code == 200 and resp.headers["content-type"] == XLSX
    ws = openpyxl.load_workbook(io.BytesIO(resp.content)).active
    assert ws["B2"].value == world.venue_id and ws["B3"].value and ws["B4"].value == RECENT_DAY
    assert ws["B7"].value == "Số định danh hoặc số điện thoại"


def test_an_upload_answers_the_report_and_a_resend_stores_nothing_twice(client: TestClient, world: World,
                                                                         service) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    data = paper_sheet(world.venue_id, [("0912000771", "08:00", "08:45"), ("0912000772", "9h"),
                                        ("0912000773", "10:00", "09:00"), ("", "10:00"),
                                        ("0912000774", "=NOW()")])  # fmt: skip
    before = stored(service, world)  # other tests (the roles table) may have uploaded to this venue already
    first = upload(client, world, "commune_officer", world.venue_id, data, lang="en")
    assert first.status_code == 200, first.text
    report = first.json()
    assert report["venue_id"] == world.venue_id and report["date"] == RECENT_DAY
    assert (report["rows"], report["accepted_rows"], report["checkins"], report["refused_rows"]) == (5, 2, 3, 3)
    assert [(r["row"], r["column"], r["reason"]) for r in report["refused"]] == [
        (10, "D", "paper_out_before_in"), (11, "B", "paper_empty_identifier"), (12, "C", "paper_formula")]  # fmt: skip
    assert report["refused"][0]["message"] == "time out before time in"
    assert report["refused"][0]["header"] == "Giờ ra"  # as the sheet says it
    assert delta(stored(service, world), before) == (3, 3)
    again = upload(client, world, "venue_owner", world.venue_id, data)
    assert again.status_code == 200 and again.json()["refused"][0]["message"] == "giờ ra trước giờ vào"
    assert delta(stored(service, world), before) == (3, 3)  # the keys make the rows the same rows


def delta(now: tuple[int, int], before: tuple[int, int]) -> tuple[int, int]:
    return now[0] - before[0], now[1] - before[1]


def stored(service, world: World) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """The venue's paper check-ins and the paper dead letters, as the store reads them (FINAL: keys merged)."""
    with service._lock:
        n = service.rt.store.query("SELECT count() AS n FROM qrtrace.checkins FINAL WHERE scanner_id LIKE 'paper:%' "
                                   "AND venue_id = {v:String}", {"v": world.venue_id})["n"][0]  # fmt: skip
        d = service.rt.store.query("SELECT count() AS n FROM qrtrace.dead_letters FINAL "
                                   "WHERE reason LIKE 'paper_%'")["n"][0]  # fmt: skip
    return int(n), int(d)


def test_a_venue_owner_of_another_venue_and_an_officer_elsewhere_are_refused(client: TestClient, world: World,
                                                                              service) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    before = counts(service)
    data = paper_sheet(world.venue_id, [("0912000781", "08:00")])
    for who in ("other_venue_owner", "other_district_officer", "scanner", "epidemiologist", "admin"):
        resp = upload(client, world, who, world.venue_id, data)
        assert resp.status_code == 403, (who, resp.text)
        assert set(resp.json()) == {"error"}
    resp = upload(client, world, "venue_owner", "OT-MARKET", paper_sheet("OT-MARKET", [("0912000782", "08:00")]))
    assert resp.status_code == 403
    assert client.get("/api/venues/OT-MARKET/paper-log/template.xlsx",
                      headers=world.auth("commune_officer")).status_code == 403  # fmt: skip
    assert counts(service) == before


def test_a_sheet_of_another_venue_a_non_template_and_a_large_body(client: TestClient, world: World) -> None:
    other = upload(client, world, "venue_owner", world.venue_id, paper_sheet("OT-MARKET", [("0912000791", "8:00")]))
    assert other.status_code == 400 and "OT-MARKET" in other.json()["error"]
    junk = upload(client, world, "venue_owner", world.venue_id, b"not a spreadsheet")
    assert junk.status_code == 400 and "XLSX" in junk.json()["error"]
    big = upload(client, world, "venue_owner", world.venue_id, b"x" * (2 * 1024 * 1024 + 1))
    assert big.status_code == 413 and set(big.json()) == {"error"}
