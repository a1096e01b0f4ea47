"""Coverage, trend and the upward export: consistent with each other and with what is registered."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from qrtrace.api.service import ApiService
from tests.api.conftest import World

pytestmark = pytest.mark.api


def test_a_new_venue_is_registered_and_silent_until_it_scans(client: TestClient, world: World) -> None:
    me = world.auth("commune_officer")
    before = client.get("/api/reports/coverage", headers=me).json()
    resp = client.post("/api/venues", headers=me, json={"venue_id": "NEW-KARAOKE", "name": "Karaoke Ánh Dương",
                                                        "category": "karaoke", "commune_code": world.commune_code,
                                                        "capacity": 40})  # fmt: skip
    assert resp.status_code == 201, resp.text
    after = client.get("/api/reports/coverage", headers=me).json()
    assert after["communes"][0]["registered"] == before["communes"][0]["registered"] + 1
    assert "NEW-KARAOKE" in {v["venue_id"] for v in after["silent_venues"]}
    cell = next(c for c in after["cells"] if c["category"] == "karaoke")
    assert cell["registered"] >= 1 and cell["category_name"] == "Karaoke"
    assert any(v["venue_id"] == "NEW-KARAOKE" for v in client.get("/api/venues", params={"category": "karaoke"},
                                                                   headers=me).json())  # fmt: skip


def test_coverage_trend_and_export_agree(client: TestClient, world: World, service: ApiService) -> None:
    me = world.auth("district_officer")
    as_of = world.demo_trace["rules"]["until"]  # the end of the demo's last simulated day
    cov = client.get("/api/reports/coverage", params={"as_of": as_of}, headers=me).json()
    assert sum(c["scans_24h"] for c in cov["communes"]) > 0
    assert all(c["active_24h"] <= c["active_7d"] <= c["registered"] for c in cov["cells"])
    assert {o["office"] for o in cov["offices"]} >= {"commune_committee", "health_office"}
    assert sum(o["registered"] for o in cov["offices"]) == sum(c["registered"] for c in cov["communes"])
    trend = client.get("/api/reports/trend", params={"as_of": as_of, "days": 7}, headers=me).json()
    assert len(trend) == 7 and trend[-1]["scans"] == sum(c["scans_24h"] for c in cov["communes"])
    assert trend[-1]["active_venues"] == sum(c["active_24h"] for c in cov["communes"])
    xlsx = client.get("/api/reports/coverage/export", params={"as_of": as_of, "format": "xlsx"}, headers=me)
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet["A1"].value.startswith("BÁO CÁO TIẾN ĐỘ TRIỂN KHAI QUÉT MÃ QR") and "Sơn Dương" in sheet["A2"].value
    rows = list(sheet.iter_rows(min_row=5, values_only=True))
    assert rows[0][:3] == ("STT", "Mã xã", "Xã / thị trấn")
    grand = rows[-1]
    assert grand[2] == "TỔNG CỘNG" and grand[5] == sum(c["registered"] for c in cov["communes"])
    assert grand[9] == sum(c["scans_24h"] for c in cov["communes"])
    csv_text = client.get("/api/reports/coverage/export", params={"as_of": as_of, "format": "csv", "lang": "en"},
                          headers=me).content.decode("utf-8-sig")  # fmt: skip
    assert csv_text.splitlines()[0].startswith("No.,Commune code,Commune,Venue category")


def test_operations_are_honest_in_embedded_mode(client: TestClient, world: World) -> None:
    ops = client.get("/api/operations", headers=world.auth("admin")).json()
    assert ops["mode"] == "embedded" and ops["workers"]["state"] == "not_running"
    assert "Embedded mode" in ops["workers"]["reason"]
    tables = {t["table"]: t for t in ops["store_size"]}
    assert tables["checkins"]["rows"] > 0 and tables["checkins"]["bytes"] > 0
    assert {d["reason"] for d in ops["dead_letters"]} >= {"malformed_json", "unmatched_checkout"}
