"""Venue zones through the API (issue 14): officers add a venue's zones, each zone's QR and poster, and a
scanner's zoned check-ins land with their zone (an unknown zone is a dead letter)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from qrtrace.api.service import ApiService
from qrtrace.domain.venue_qr import decode_venue_qr, encode_venue_qr, venue_signing_key
from tests.api.conftest import RECENT_DAY, World

pytestmark = pytest.mark.api


@pytest.fixture(scope="module")
def zoned(client: TestClient, world: World) -> str:
    """The scanner's venue, with zones Khu A and Khu B."""
    for zone in ("Khu A", "Khu B"):
        resp = client.post(f"/api/venues/{world.venue_id}/zones", json={"zone": zone},
                           headers=world.auth("commune_officer"))  # fmt: skip
        assert resp.status_code == 201, resp.text
    assert {"Khu A", "Khu B"} <= set(resp.json()["zones"])
    return world.venue_id


def test_venue_listings_show_zones(client: TestClient, world: World, zoned: str) -> None:
    venues = client.get("/api/venues", headers=world.auth("commune_officer")).json()
    listed = next(v for v in venues if v["venue_id"] == zoned)
    assert {"Khu A", "Khu B"} <= set(listed["zones"])
    assert all(isinstance(v["zones"], list) for v in venues)


@pytest.mark.parametrize(("zone", "status", "words"), [("khu a", 400, "appears twice"),
                                                        ("Khu;C", 400, "separates zones"),
                                                        ("", 422, "zone")])  # fmt: skip
def test_bad_zones_are_refused_in_one_sentence(client: TestClient, world: World, zoned: str, zone: str, status: int,
                                               words: str) -> None:  # fmt: skip
    resp = client.post(f"/api/venues/{zoned}/zones", json={"zone": zone}, headers=world.auth("district_officer"))
    assert resp.status_code == status and words in resp.json()["error"], resp.text


def test_an_officer_of_another_district_cannot_add_a_zone(client: TestClient, world: World, zoned: str) -> None:
    resp = client.post(f"/api/venues/{zoned}/zones", json={"zone": "Khu X"},
                       headers=world.auth("other_district_officer"))  # fmt: skip
    assert resp.status_code == 403 and set(resp.json()) == {"error"}


def test_a_zones_qr_and_poster(client: TestClient, world: World, zoned: str) -> None:
    svg = client.get(f"/api/venues/{zoned}/qr.svg", params={"zone": "Khu A"}, headers=world.auth("venue_owner"))
    assert svg.status_code == 200 and svg.text.startswith("<?xml")
    pdf = client.get(f"/api/venues/{zoned}/poster.pdf", params={"zone": "Khu B"}, headers=world.auth("venue_owner"))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    unknown = client.get(f"/api/venues/{zoned}/qr.png", params={"zone": "Khu Z"}, headers=world.auth("venue_owner"))
    assert unknown.status_code == 400 and "has no zone 'Khu Z'" in unknown.json()["error"]


def test_zoned_checkins_land_with_their_zone_and_an_unknown_zone_is_a_dead_letter(
    client: TestClient, world: World, service: ApiService, zoned: str
) -> None:
    venue = next(v for v in service.rt.venues() if v.venue_id == zoned)
    key = venue_signing_key(service.rt.keyring.venue_signing_seed)
    qr_b = encode_venue_qr(venue, key, datetime.now(UTC), zone="Khu B")
    assert decode_venue_qr(qr_b, key.public_key()).zone == "Khu B"
    base = {"venue_id": zoned, "person_id": "0912777001", "direction": "in", "mode": "venue_qr",
            "scanner_id": "zone-test"}  # fmt: skip
    batch = [
        {**base, "scan_id": "zone-api-a", "event_time": f"{RECENT_DAY}T09:00:00+07:00", "zone": "Khu A"},
        {**base, "scan_id": "zone-api-b", "event_time": f"{RECENT_DAY}T09:20:00+07:00", "venue_qr": qr_b},
        {**base, "scan_id": "zone-api-z", "event_time": f"{RECENT_DAY}T09:30:00+07:00", "zone": "Khu Z"},
    ]
    resp = client.post("/api/checkins", json=batch, headers=world.auth("scanner"))
    assert resp.status_code == 202, resp.text
    assert resp.json()["accepted"] == 2 and resp.json()["reasons"] == {"unknown_zone": 1}
    with service._lock:
        q = service.rt.store.query
        stored = q("SELECT scan_id, zone FROM qrtrace.checkins FINAL WHERE scan_id LIKE 'zone-api-%' ORDER BY scan_id")
        visits = q("SELECT opened_by, zone, end_us - start_us AS us FROM qrtrace.visits_by_venue FINAL "
                   "WHERE opened_by LIKE 'zone-api-%' ORDER BY opened_by")  # fmt: skip
        by_person = q("SELECT opened_by, zone FROM qrtrace.visits_by_person FINAL WHERE opened_by LIKE 'zone-api-%' "
                      "ORDER BY opened_by")  # fmt: skip
    assert stored == {"scan_id": ["zone-api-a", "zone-api-b"], "zone": ["Khu A", "Khu B"]}
    assert visits["opened_by"] == ["zone-api-a", "zone-api-b"] and visits["zone"] == ["Khu A", "Khu B"]
    assert visits["us"][0] == 20 * 60_000_000  # moving to Khu B closed the Khu A visit at that scan
    assert by_person == {"opened_by": ["zone-api-a", "zone-api-b"], "zone": ["Khu A", "Khu B"]}


def test_a_zone_typed_in_decomposed_unicode_is_the_registered_zone(
    client: TestClient, world: World, service: ApiService, zoned: str
) -> None:
    """Vietnamese typed as NFD (a base letter plus combining marks, as some keyboards send it) names the same
    zone as NFC, when a zone is added and when a check-in names it: stored once, in NFC."""
    import unicodedata

    nfc, nfd = "Khu hàng khô", unicodedata.normalize("NFD", "Khu hàng khô")
    assert nfc != nfd
    added = client.post(f"/api/venues/{zoned}/zones", json={"zone": nfd}, headers=world.auth("commune_officer"))
    assert added.status_code in (200, 201), added.text
    assert nfc in added.json()["zones"] and nfd not in added.json()["zones"]
    checkin = {"venue_id": zoned, "person_id": "0912777002", "direction": "in", "mode": "venue_qr",
               "scanner_id": "zone-test", "scan_id": "zone-api-nfd", "event_time": f"{RECENT_DAY}T10:00:00+07:00",
               "zone": nfd}  # fmt: skip
    resp = client.post("/api/checkins", json=[checkin], headers=world.auth("scanner"))
    assert resp.status_code == 202 and resp.json()["accepted"] == 1 and not resp.json().get("reasons"), resp.text
    with service._lock:
        stored = service.rt.store.query("SELECT zone FROM qrtrace.checkins FINAL WHERE scan_id = 'zone-api-nfd'")
    assert stored["zone"] == [nfc]
