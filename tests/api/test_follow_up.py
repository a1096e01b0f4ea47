"""Contact follow-up through the API: a stored trace's contacts become records in the right commune (once),
a health station sees and changes only its commune's, every change is in the history and the audit log, a
positive contact becomes a case that traces, and the exports have the documented layouts."""

from __future__ import annotations

import csv
import io
import time

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from qrtrace.api.service import ApiService
from qrtrace.queries.follow_up import DISTRICT_HEADERS, GODATA_COLUMNS, SORMAS_COLUMNS
from tests.api.conftest import RECENT_DAY, World
from tests.api.test_roles import read_result, run_trace

pytestmark = pytest.mark.api


STATION_CASE = "FU-STATION-1"
STATION_CONTACTS = 8  # people beside the station case: enough records for every test that changes one


def seed_station_case(client: TestClient, world: World) -> None:
    """A case of our own at the demo commune's venue, with people beside it, so that the health station (bound
    to that commune) has F1 records whatever the simulated days gave the demo case (its cohort follows the
    clock). Idempotent: the scans repeat their ids and a declared case is kept."""
    at = f"{RECENT_DAY}T09:00:00+07:00", f"{RECENT_DAY}T10:00:00+07:00"
    people = ["0912000550"] + [f"09120005{60 + i}" for i in range(STATION_CONTACTS)]
    scans = [{"scan_id": f"fu-station-{p}-{d}", "venue_id": world.venue_id, "person_id": p, "direction": d,
              "event_time": t, "mode": "personal_qr", "scanner_id": "fu-test"}
             for p in people for d, t in (("in", at[0]), ("out", at[1]))]  # fmt: skip
    resp = client.post("/api/checkins", json=scans, headers=world.auth("scanner"))
    assert resp.status_code == 202, resp.text
    resp = client.post("/api/cases", json={"case_id": STATION_CASE, "person_id": people[0],
                                           "infectious_from": f"{RECENT_DAY}T00:00:00+07:00",
                                           "infectious_to": f"{RECENT_DAY}T23:59:00+07:00"},
                       headers=world.auth("epidemiologist"))  # fmt: skip
    assert resp.status_code in (201, 200, 409), resp.text
    # The server's trace index follows the visit feed (twice a second): wait, bounded, until the scans are in it.
    for _ in range(40):
        trace_id = run_trace(client, world, "epidemiologist", [STATION_CASE], purpose="follow-up fixture")
        if len(read_result(client, world, "admin", trace_id)["cases"][0]["contacts"]) >= STATION_CONTACTS:
            return
        time.sleep(0.25)
    raise AssertionError("the station case's scans never reached the trace index")


@pytest.fixture(scope="module")
def traced(client: TestClient, world: World) -> dict:
    """A trace of the demo case and of the station case, and its result (pseudonyms: read as admin)."""
    seed_station_case(client, world)
    trace_id = run_trace(client, world, "epidemiologist", ["DEMO-F0-1", STATION_CASE], purpose="follow-up fixture")
    return {"trace_id": trace_id, "result": read_result(client, world, "admin", trace_id)}


def _all(client: TestClient, world: World, **params: str) -> list[dict]:
    resp = client.get("/api/follow-ups", params=params, headers=world.auth("epidemiologist"))
    assert resp.status_code == 200, resp.text
    return resp.json()["follow_ups"]


def _of_case(client: TestClient, world: World, case_id: str) -> list[dict]:
    return [r for r in _all(client, world) if r["case_id"] == case_id]


def test_a_trace_makes_one_record_per_contact_in_the_commune_of_its_first_exposure(
        client: TestClient, world: World, traced: dict) -> None:  # fmt: skip
    contacts = traced["result"]["cases"][0]["contacts"]
    assert contacts
    records = {r["person"]: r for r in _of_case(client, world, "DEMO-F0-1")}
    assert set(records) == {c["person_id"] for c in contacts}
    venues = {v["venue_id"]: v["commune_code"] for v in client.get("/api/venues", headers=world.auth("admin")).json()}
    for c in contacts:
        first = min(c["exposures"], key=lambda e: e["start"])
        r = records[c["person_id"]]
        assert r["commune_code"] == venues[first["venue_id"]] and r["venue_id"] == first["venue_id"]
        assert r["hop"] == c["hop"]
        # created not reached (the roles table may have moved some on already when it runs first)
        assert r["status"] != "not_reached" or r["status_label"] == "Chưa liên lạc được"
    station = {r["person"]: r for r in _of_case(client, world, STATION_CASE)}
    assert len(station) >= STATION_CONTACTS and {r["commune_code"] for r in station.values()} >= {world.commune_code}
    assert all(r["hop"] in (1, 2) for r in station.values())


def test_tracing_again_creates_nothing_twice(client: TestClient, world: World, traced: dict) -> None:
    before = _of_case(client, world, "DEMO-F0-1")
    station = _of_case(client, world, STATION_CASE)
    again = client.post(f"/api/traces/{traced['trace_id']}/follow-ups", headers=world.auth("epidemiologist"))
    assert again.status_code == 200 and again.json() == {"contacts": len(before) + len(station), "created": 0}
    run_trace(client, world, "epidemiologist", ["DEMO-F0-1"], purpose="follow-up rerun")
    after = _of_case(client, world, "DEMO-F0-1")
    assert sorted(r["follow_up_id"] for r in after) == sorted(r["follow_up_id"] for r in before)


def test_a_health_station_lists_only_its_commune(client: TestClient, world: World, traced: dict) -> None:
    mine = client.get("/api/follow-ups", headers=world.auth("health_station")).json()
    assert mine["follow_ups"] and {r["commune_code"] for r in mine["follow_ups"]} == {world.commune_code}
    assert mine["may_update"] and mine["may_call"] and not mine["may_trace"]
    assert client.get("/api/follow-ups", headers=world.auth("other_health_station")).json()["follow_ups"] == []


def _own_record(client: TestClient, world: World, status: str = "not_reached", hop: int | None = None) -> dict:
    rows = client.get("/api/follow-ups", params={"status": status}, headers=world.auth("health_station")).json()
    return next(r for r in rows["follow_ups"] if hop is None or r["hop"] == hop)


def test_status_changes_are_kept_in_the_history_and_audited(client: TestClient, world: World, traced: dict,
                                                            service: ApiService) -> None:  # fmt: skip
    me = world.auth("health_station")
    fid = _own_record(client, world)["follow_up_id"]
    assert client.post(f"/api/follow-ups/{fid}", json={"status": "reached", "note": "gọi lúc 9 giờ"},
                       headers=me).status_code == 200  # fmt: skip
    resp = client.post(f"/api/follow-ups/{fid}", json={"status": "quarantined", "date": "2026-11-20T08:00:00+07:00"},
                       headers=me)  # fmt: skip
    assert resp.status_code == 200, resp.text
    rec = resp.json()
    assert rec["status"] == "quarantined" and rec["quarantine_from"].startswith("2026-11-20T08:00")
    assert rec["quarantine_until"].startswith("2026-12-04T08:00")  # 14 days by default
    fields = [(h["field"], h["from"], h["to"]) for h in rec["history"]]
    assert ("status", "not_reached", "reached") in fields and ("status", "reached", "quarantined") in fields
    assert ("notes", "", "gọi lúc 9 giờ") in fields
    assert {h["by"] for h in rec["history"]} == {"demo-health-station"}
    same = client.post(f"/api/follow-ups/{fid}", json={"status": "quarantined"}, headers=me)
    assert same.status_code == 400 and "already" in same.json()["error"]
    bad = client.post(f"/api/follow-ups/{fid}", json={"status": "cured"}, headers=me)
    assert bad.status_code == 400 and "Unknown status" in bad.json()["error"]
    with service._lock:
        audit = service.rt.store.query("SELECT action, subject, actor, detail FROM qrtrace.audit_log WHERE subject = "
                                       "{s:String} AND action = 'follow_up_update'", {"s": fid})  # fmt: skip
    assert len(audit["action"]) == 2 and set(audit["actor"]) == {"demo-health-station"}
    assert not any("gọi lúc" in d for d in audit["detail"])  # the audit log says a note changed, not what it says


def test_positive_declares_a_case_that_traces(client: TestClient, world: World, traced: dict) -> None:
    me = world.auth("health_station")
    record = _own_record(client, world, hop=1)  # an F1 met the demo case: the new case's trace finds it
    resp = client.post(f"/api/follow-ups/{record['follow_up_id']}/positive",
                       json={"tested_on": record["exposed_to"], "infectious_from": record["exposed_from"],
                             "infectious_to": record["exposed_to"]}, headers=me)  # fmt: skip
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    case_id = answer["case_id"]
    assert answer["declared"] and answer["trace"] == {"may_trace": False, "case_ids": [case_id],
                                                      "by": "the province's epidemiologists"}  # fmt: skip
    assert answer["follow_up"]["status"] == "tested_positive" and answer["follow_up"]["new_case_id"] == case_id
    final = client.post(f"/api/follow-ups/{record['follow_up_id']}", json={"status": "reached"}, headers=me)
    assert final.status_code == 400 and "final" in final.json()["error"]
    assert client.post("/api/traces", json={"case_ids": [case_id], "purpose": "x y z"}, headers=me).status_code == 403
    cases = client.get("/api/cases", headers=world.auth("epidemiologist")).json()
    assert case_id in {c["case_id"] for c in cases}
    trace_id = run_trace(client, world, "epidemiologist", [case_id], purpose="positive contact")
    doc = read_result(client, world, "admin", trace_id)["cases"][0]
    assert doc["case"] == record["person"]
    source = next(c["case"] for c in traced["result"]["cases"] if c["case_id"] == record["case_id"])
    assert source in {c["person_id"] for c in doc["contacts"]}  # they met where the contact was exposed


def test_health_station_opens_the_phone_of_its_own_records_only(client: TestClient, world: World, traced: dict,
                                                                service: ApiService) -> None:  # fmt: skip
    fid = _own_record(client, world)["follow_up_id"]
    no_purpose = client.get(f"/api/follow-ups/{fid}/contact", headers=world.auth("health_station"))
    assert no_purpose.status_code == 422
    resp = client.get(f"/api/follow-ups/{fid}/contact", params={"purpose": "gọi điện theo dõi"},
                      headers=world.auth("health_station"))  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert resp.json()["identifier"] and not resp.json()["identifier"].startswith("?")
    with service._lock:
        n = service.rt.store.query("SELECT count() AS n FROM qrtrace.audit_log WHERE action = 'reidentify' "
                                   "AND actor = 'demo-health-station' AND purpose = 'gọi điện theo dõi'")["n"][0]
    assert n >= 1
    for role in ("commune_officer", "admin"):
        assert client.get(f"/api/follow-ups/{fid}/contact", params={"purpose": "look"},
                          headers=world.auth(role)).status_code == 403  # fmt: skip


def test_exports_have_the_documented_layouts(client: TestClient, world: World, traced: dict) -> None:
    me = world.auth("health_station")
    params = {"purpose": "báo cáo huyện"}
    xlsx = client.get("/api/follow-ups/export", params={**params, "format": "district-xlsx"}, headers=me)
    assert xlsx.status_code == 200, xlsx.text
    rows = list(load_workbook(io.BytesIO(xlsx.content)).active.iter_rows(values_only=True))
    assert rows[0] == DISTRICT_HEADERS and rows[1][0] == 1
    mine = client.get("/api/follow-ups", headers=me).json()["follow_ups"]
    assert len(rows) - 1 == len(mine)
    assert {r[2] for r in rows[1:]}.isdisjoint({r["person"] for r in mine})  # identifiers, not pseudonyms
    sormas = list(csv.reader(io.StringIO(client.get("/api/follow-ups/export", params={**params, "format": "sormas"},
                                                    headers=me).content.decode("utf-8-sig"))))  # fmt: skip
    assert sormas[0] == ["Contact"] * len(SORMAS_COLUMNS) and tuple(sormas[1]) == SORMAS_COLUMNS
    assert {r[SORMAS_COLUMNS.index("disease")] for r in sormas[2:]} == {"CORONAVIRUS"}
    godata = list(csv.reader(io.StringIO(client.get("/api/follow-ups/export", params={**params, "format": "godata"},
                                                    headers=me).content.decode("utf-8-sig"))))  # fmt: skip
    assert tuple(godata[0]) == GODATA_COLUMNS and len(godata) - 1 == len(mine)
    officer = client.get("/api/follow-ups/export", params={**params, "format": "godata"},
                         headers=world.auth("commune_officer")).content.decode("utf-8-sig")  # fmt: skip
    names = {r[GODATA_COLUMNS.index("lastName")] for r in list(csv.reader(io.StringIO(officer)))[1:]}
    assert names == {r["person"] for r in mine}  # an officer gets pseudonyms


def test_a_district_officer_reads_its_district_and_not_another(client: TestClient, world: World,
                                                               traced: dict) -> None:  # fmt: skip
    demo = client.get("/api/follow-ups", headers=world.auth("district_officer")).json()["follow_ups"]
    assert demo and len(demo) == len(_all(client, world))
    assert client.get("/api/follow-ups", headers=world.auth("other_district_officer")).json()["follow_ups"] == []
