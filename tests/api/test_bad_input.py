"""Bad input gets a clear 4xx and stores nothing; individually bad scans in a good batch are data (dead letters)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from qrtrace.api.service import ApiService
from qrtrace.domain.venue_qr import encode_venue_qr, venue_signing_key
from tests.api.conftest import World, counts

pytestmark = pytest.mark.api


def scan(world: World, n: int, **fields: object) -> dict:
    return {"scan_id": f"bad-input-{n}", "venue_id": world.venue_id, "person_id": f"09120100{n:02d}",
            "direction": "in", "event_time": "2026-11-21T08:00:00+07:00", "mode": "venue_qr",
            "scanner_id": "bad-input", **fields}  # fmt: skip


def _qr(service: ApiService, venue_id: str) -> str:
    venue = next(v for v in service.rt.venues() if v.venue_id == venue_id)
    return encode_venue_qr(venue, venue_signing_key(service.rt.keyring.venue_signing_seed), datetime.now(UTC))


def _refused(resp, status: int, words: str) -> None:  # type: ignore[no-untyped-def]
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and words in body["error"], body
    assert "Traceback" not in resp.text


@pytest.mark.parametrize(
    ("case", "status", "words"),
    [
        ("malformed_json", 422, "not valid JSON"),
        ("wrong_type", 422, "[0].event_time"),
        ("unknown_field", 422, "[0].colour"),
        ("not_a_list", 422, "list"),
        ("oversized_batch", 413, "at most 5,000"),
        ("oversized_body", 413, "too large"),
        ("forged_qr", 400, "signature of the wrong length. Nothing from this batch was stored"),
        ("tampered_qr", 400, "signature does not match"),
        ("qr_of_another_venue", 400, "carries the QR of venue"),
        ("another_venue", 403, "another"),
        ("expired_token", 401, "expired"),
    ],
)
def test_refused_check_in_batches_store_nothing(client: TestClient, world: World, service: ApiService, case: str,
                                                status: int, words: str) -> None:  # fmt: skip
    headers = {**world.auth("scanner"), "Content-Type": "application/json"}
    genuine = _qr(service, world.venue_id)
    claims, signature = genuine.split(".")[1:]
    payloads = {
        "malformed_json": b'[{"scan_id": "x", ',
        "wrong_type": [scan(world, 1, event_time=1732176000)],
        "unknown_field": [scan(world, 2, colour="red")],
        "not_a_list": {"scan_id": "x"},
        "oversized_batch": [scan(world, 3)] * 5001,
        "oversized_body": [scan(world, 4, scanner_id="x" * 60)] * 4000 + [{"pad": "y" * 4_500_000}],
        "forged_qr": [scan(world, 5, venue_qr="QRT1.bm90LWEtdmVudWU.c2lnbmF0dXJl")],
        "tampered_qr": [scan(world, 6, venue_qr=f"QRT1.{claims[:-2]}{'A' if claims[-2] != 'A' else 'B'}{claims[-1]}"
                                                 f".{signature}")],
        "qr_of_another_venue": [scan(world, 7, venue_qr=_qr(service, "OT-MARKET"))],
        "another_venue": [scan(world, 8, venue_id="OT-MARKET")],
        "expired_token": [scan(world, 9)],
    }  # fmt: skip
    if case == "expired_token":
        headers = {**world.auth("expired"), "Content-Type": "application/json"}
    before = counts(service)
    payload = payloads[case]
    if isinstance(payload, bytes):
        resp = client.post("/api/checkins", content=payload, headers=headers)
    else:
        resp = client.post("/api/checkins", json=payload, headers=headers)
    _refused(resp, status, words)
    assert counts(service) == before


def test_a_good_batch_keeps_its_bad_scans_as_dead_letters(client: TestClient, world: World,
                                                          service: ApiService) -> None:  # fmt: skip
    before = counts(service)
    batch = [scan(world, 20, venue_qr=_qr(service, world.venue_id)), scan(world, 21, event_time="yesterday morning")]
    resp = client.post("/api/checkins", json=batch, headers=world.auth("scanner"))
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["received"] == 2 and body["dead_lettered"] == 1 and body["reasons"] == {"bad_event_time": 1}
    after = counts(service)
    assert after["dead_letters"] == before["dead_letters"] + 1
    assert after["checkins"] == before["checkins"] + 1
    # the same batch again (a scanner's retry) stores no second check-in
    assert client.post("/api/checkins", json=batch, headers=world.auth("scanner")).json()["deduplicated"] == 1
    assert counts(service)["checkins"] == after["checkins"]


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("/api/cases", {"case_id": "BAD-1", "person_id": "0912", "infectious_from": "2026-11-22T00:00:00+07:00",
                        "infectious_to": "2026-11-20T00:00:00+07:00"}, 400, "ends before it starts"),
        ("/api/cases", {"case_id": "BAD-2", "person_id": "0912", "infectious_from": "2026-11-20T00:00:00",
                        "infectious_to": "2026-11-22T00:00:00+07:00"}, 422, "infectious_from"),
        ("/api/cases", {"case_id": "has space", "person_id": "0912", "infectious_from": "2026-11-20T00:00:00+07:00",
                        "infectious_to": "2026-11-22T00:00:00+07:00"}, 422, "case_id"),
        ("/api/traces", {"case_ids": ["NO-SUCH-CASE"], "purpose": "testing"}, 404, "NO-SUCH-CASE"),
        ("/api/traces", {"case_ids": ["DEMO-F0-1"], "purpose": "x"}, 422, "purpose"),
        ("/api/traces", {"case_ids": ["DEMO-F0-1"], "purpose": "testing", "depth": 9}, 422, "depth"),
        ("/api/traces", {"case_ids": [], "purpose": "testing"}, 422, "case_ids"),
    ],
)  # fmt: skip
def test_refused_cases_and_traces_store_nothing(client: TestClient, world: World, service: ApiService, path: str,
                                                body: dict, status: int, words: str) -> None:  # fmt: skip
    before = counts(service)
    _refused(client.post(path, json=body, headers=world.auth("epidemiologist")), status, words)
    assert counts(service) == before


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"category": "spaceport"}, 400, "Unknown venue category"),
        ({"commune_code": "12345"}, 400, "not a registered commune"),
        ({"capacity": "many"}, 422, "capacity"),
        ({"capacity": 0}, 422, "capacity"),
        ({"venue_id": "EXISTING"}, 409, "already registered"),
    ],
)
def test_refused_venues_store_nothing(client: TestClient, world: World, service: ApiService, change: dict,
                                      status: int, words: str) -> None:  # fmt: skip
    existing = world.venue_id
    body = {"venue_id": "BAD-VENUE", "name": "Quán", "category": "restaurant", "commune_code": world.commune_code,
            "capacity": 10, **change}  # fmt: skip
    body["venue_id"] = existing if body["venue_id"] == "EXISTING" else body["venue_id"]
    before = counts(service)
    _refused(client.post("/api/venues", json=body, headers=world.auth("commune_officer")), status, words)
    assert counts(service) == before
    assert "BAD-VENUE" not in {v.venue_id for v in service.rt.venues()}


def test_unknown_routes_and_venues_are_sentences(client: TestClient, world: World) -> None:
    _refused(client.get("/api/nothing-here", headers=world.auth("admin")), 404, "no page or API route")
    _refused(client.get("/api/venues/NOPE/poster.pdf", headers=world.auth("admin")), 404, "not registered")
    _refused(client.get("/api/traces/tr-nope/result", headers=world.auth("admin")), 404, "No finished trace")
