"""Each role sees only its area: asking for another commune, district or venue gets a 403 and no data,
and lists are narrowed to the caller's area, never leaked."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from qrtrace.api.service import ApiService
from tests.api.conftest import RECENT_DAY, World, counts

pytestmark = pytest.mark.api

OTHER_DISTRICT = {"99901", "99902"}


def _refused(resp) -> None:  # type: ignore[no-untyped-def]
    assert resp.status_code == 403, resp.text
    assert set(resp.json()) == {"error"}  # a sentence, no rows


def test_commune_officer_sees_its_commune_only(client: TestClient, world: World) -> None:
    me = world.auth("commune_officer")
    cov = client.get("/api/reports/coverage", headers=me).json()
    assert {c["commune_code"] for c in cov["cells"]} == {world.commune_code}
    assert [c["commune_code"] for c in cov["communes"]] == [world.commune_code]
    assert {v["commune_code"] for v in cov["silent_venues"]} <= {world.commune_code}
    venues = client.get("/api/venues", headers=me).json()
    assert venues and {v["commune_code"] for v in venues} == {world.commune_code}
    assert [c["commune_code"] for c in client.get("/api/communes", headers=me).json()] == [world.commune_code]
    hot = client.get("/api/reports/hotspots", headers=me).json()
    assert {v["commune_code"] for v in hot["venues"]} <= {world.commune_code}
    assert [c["commune_code"] for c in hot["communes"]] in ([], [world.commune_code])
    for path in ("/api/reports/coverage", "/api/reports/trend", "/api/reports/coverage/export", "/api/venues",
                 "/api/reports/hotspots"):
        _refused(client.get(path, params={"commune": world.other_commune}, headers=me))


def test_commune_officer_cannot_register_or_print_elsewhere(client: TestClient, world: World,
                                                            service: ApiService) -> None:  # fmt: skip
    me = world.auth("commune_officer")
    before = counts(service)
    venue = {"venue_id": "LEAK-1", "name": "x", "category": "market", "commune_code": world.other_commune,
             "capacity": 5}  # fmt: skip
    _refused(client.post("/api/venues", headers=me, json=venue))
    assert counts(service) == before
    elsewhere = next(v for v in client.get("/api/venues", headers=world.auth("admin")).json()
                     if v["commune_code"] != world.commune_code)  # fmt: skip
    _refused(client.get(f"/api/venues/{elsewhere['venue_id']}/poster.pdf", headers=me))


def test_district_officers_see_their_own_district(client: TestClient, world: World) -> None:
    demo = client.get("/api/reports/coverage", headers=world.auth("district_officer")).json()
    demo_communes = {c["commune_code"] for c in demo["communes"]}
    assert len(demo_communes) == 31 and not demo_communes & OTHER_DISTRICT
    other = client.get("/api/reports/coverage", headers=world.auth("other_district_officer")).json()
    assert {c["commune_code"] for c in other["communes"]} == OTHER_DISTRICT
    assert {v["venue_id"] for v in other["silent_venues"]} == {"OT-MARKET", "OT-SCHOOL"}  # registered, never scanned
    other_venues = client.get("/api/venues", headers=world.auth("other_district_officer")).json()
    assert {v["venue_id"] for v in other_venues} == {"OT-MARKET", "OT-SCHOOL"}
    _refused(client.get("/api/reports/coverage", params={"commune": "99901"}, headers=world.auth("district_officer")))
    _refused(client.get(f"/api/venues/{world.venue_id}/qr.png", headers=world.auth("other_district_officer")))
    export = client.get("/api/reports/coverage/export", params={"format": "xlsx"},
                        headers=world.auth("other_district_officer"))  # fmt: skip
    sheet = load_workbook(io.BytesIO(export.content)).active
    codes = {row[1] for row in sheet.iter_rows(min_row=6, values_only=True) if row[1]}
    assert codes == OTHER_DISTRICT


def test_venue_owner_and_scanner_stay_at_their_venue(client: TestClient, world: World, service: ApiService) -> None:
    owner = world.auth("venue_owner")
    assert [v["venue_id"] for v in client.get("/api/venues", headers=owner).json()] == [world.venue_id]
    _refused(client.get("/api/venues/OT-MARKET/poster.pdf", headers=owner))
    assert client.get("/api/venues/OT-MARKET/poster.pdf", headers=world.auth("other_venue_owner")).status_code == 200
    before = counts(service)
    mixed = [
        {"scan_id": "scope-own", "venue_id": world.venue_id, "person_id": "0912000003", "direction": "in",
         "event_time": f"{RECENT_DAY}T10:00:00+07:00", "mode": "personal_qr", "scanner_id": "s"},
        {"scan_id": "scope-other", "venue_id": "OT-MARKET", "person_id": "0912000003", "direction": "in",
         "event_time": f"{RECENT_DAY}T10:05:00+07:00", "mode": "personal_qr", "scanner_id": "s"},
    ]  # fmt: skip
    _refused(client.post("/api/checkins", json=mixed, headers=world.auth("scanner")))
    assert counts(service) == before  # not even the check-in for its own venue


def test_roles_without_reidentification_never_see_identifiers(client: TestClient, world: World) -> None:
    from tests.api.test_roles import read_result, run_trace

    trace_id = run_trace(client, world, "admin", ["DEMO-F0-1"], purpose="system check")
    result = read_result(client, world, "admin", trace_id)
    case = result["cases"][0]
    assert case["reidentified"] is False and len(case["case"]) == 32
    for c in case["contacts"]:
        assert c["contact"] is None and len(c["person_id"]) == 32
        assert all(len(e["source_person_id"]) == 32 for e in c["exposures"])
    listing = client.get(f"/api/traces/{trace_id}/call-list", params={"purpose": "review"},
                         headers=world.auth("admin")).content.decode("utf-8-sig").splitlines()  # fmt: skip
    assert len(listing) > 1
    phones = [line.split(",")[4] for line in listing[1:]]
    assert set(phones) == {""}
    known = {c["person_id"] for c in world.demo_trace["contacts"]}
    assert not any(p in line for line in listing for p in known)


def test_paper_logs_stay_in_the_callers_area(client: TestClient, world: World, service: ApiService) -> None:
    """A paper log (template or upload) of a venue outside the caller's area: 403, nothing stored, and the
    same sentence for a venue elsewhere as for a venue that does not exist."""
    from tests.api.test_paper_log import XLSX, paper_sheet

    elsewhere = client.get("/api/venues", params={"commune": world.other_commune},
                           headers=world.auth("district_officer")).json()[0]["venue_id"]  # fmt: skip
    before = counts(service)
    answers = {}
    for who, venue in (("commune_officer", elsewhere), ("commune_officer", "NO-SUCH-VENUE"),
                       ("district_officer", "OT-MARKET"), ("other_district_officer", world.venue_id),
                       ("venue_owner", elsewhere)):  # fmt: skip
        sheet = paper_sheet(venue, [("0912000661", "08:00")])
        resp = client.post(f"/api/venues/{venue}/paper-log", content=sheet,
                           headers={**world.auth(who), "Content-Type": XLSX})  # fmt: skip
        _refused(resp)
        _refused(client.get(f"/api/venues/{venue}/paper-log/template.xlsx", headers=world.auth(who)))
        answers[(who, venue)] = resp.json()["error"].replace(venue, "V")
    assert answers[("commune_officer", elsewhere)] == answers[("commune_officer", "NO-SUCH-VENUE")]
    assert counts(service) == before
def test_the_census_stays_in_each_callers_area(client: TestClient, world: World, service: ApiService) -> None:
    """The unregistered list and census flags are narrowed like every list; a census row for another commune or
    district is refused row by row and writes nothing there."""
    me = world.auth("commune_officer")
    cov = client.get("/api/reports/coverage", headers=me).json()
    assert cov["unregistered"] and {e["commune_code"] for e in cov["unregistered"]} == {world.commune_code}
    assert set(cov["census_communes"]) <= {world.commune_code}
    other = client.get("/api/reports/coverage", headers=world.auth("other_district_officer")).json()
    assert not {e["commune_code"] for e in other["unregistered"]} - OTHER_DISTRICT
    before = counts(service)
    body = f"establishment_id,name,category,commune_code,address\nLEAK-CS,x,bar,{world.other_commune},y\n".encode()
    got = client.post("/api/census", content=body, headers={**me, "Content-Type": "text/csv"}).json()
    assert got["accepted"] == 0 and "outside your area" in got["refused"][0]["reason"]
    assert counts(service) == before
    elsewhere = next(v for v in client.get("/api/venues", headers=world.auth("admin")).json()
                     if v["commune_code"] != world.commune_code)  # fmt: skip
    _refused(client.get("/api/census/matches", params={"venue_id": elsewhere["venue_id"]}, headers=me))
# -- contact follow-up: a health station sees no other commune's records, by any route -------------------------
FOLLOW_UP_ROUTES = [
    ("GET", "/api/follow-ups?commune={commune}", None),
    ("GET", "/api/follow-ups/export?commune={commune}&purpose=leak+test&format=district-csv", None),
    ("GET", "/api/follow-ups/{fid}", None),
    ("POST", "/api/follow-ups/{fid}", {"status": "reached", "note": "leak"}),
    ("GET", "/api/follow-ups/{fid}/contact?purpose=leak+test", None),
    ("POST", "/api/follow-ups/{fid}/positive", {"note": "leak"}),
]


@pytest.fixture(scope="module")
def follow_up_records(client: TestClient, world: World) -> list[dict]:
    from tests.api.test_roles import run_trace

    run_trace(client, world, "epidemiologist", ["DEMO-F0-1"], purpose="scope fixture")
    return client.get("/api/follow-ups", headers=world.auth("epidemiologist")).json()["follow_ups"]


@pytest.mark.parametrize("station", ["health_station", "other_health_station"])
@pytest.mark.parametrize(("method", "path", "body"), FOLLOW_UP_ROUTES, ids=[f"{m} {p}" for m, p, _ in FOLLOW_UP_ROUTES])
def test_a_health_station_never_reaches_another_communes_follow_ups(
        client: TestClient, world: World, service: ApiService, follow_up_records: list[dict], station: str,
        method: str, path: str, body: dict | None) -> None:  # fmt: skip
    own = world.commune_code if station == "health_station" else "99901"
    elsewhere = next(r for r in follow_up_records if r["commune_code"] != own and r["status"] == "not_reached")
    url = path.format(commune=elsewhere["commune_code"], fid=elsewhere["follow_up_id"])
    before = counts(service)
    resp = client.request(method, url, json=body, headers=world.auth(station))
    assert resp.status_code in (403, 404), resp.text
    assert set(resp.json()) == {"error"} and elsewhere["person"] not in resp.text
    assert counts(service) == before
    after = client.get(f"/api/follow-ups/{elsewhere['follow_up_id']}", headers=world.auth("epidemiologist")).json()
    assert after["status"] == "not_reached" and after["notes"] == elsewhere["notes"]
    assert not any(h["by"] in ("demo-health-station", "other-station") for h in after["history"])
