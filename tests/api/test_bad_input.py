"""Bad input gets a clear 4xx and stores nothing; individually bad scans in a good batch are data (dead letters)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from qrtrace.api.service import ApiService
from qrtrace.domain.venue_qr import encode_venue_qr, venue_signing_key
from tests.api.conftest import RECENT_DAY, World, counts

pytestmark = pytest.mark.api


def scan(world: World, n: int, **fields: object) -> dict:
    return {"scan_id": f"bad-input-{n}", "venue_id": world.venue_id, "person_id": f"09120100{n:02d}",
            "direction": "in", "event_time": f"{RECENT_DAY}T08:00:00+07:00", "mode": "venue_qr",
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
    batch = [scan(world, 20, venue_qr=_qr(service, world.venue_id)), scan(world, 21, event_time="yesterday morning"),
             scan(world, 22, direction="sideways"), scan(world, 23, mode="telepathy")]
    resp = client.post("/api/checkins", json=batch, headers=world.auth("scanner"))
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["received"] == 4 and body["dead_lettered"] == 3
    assert body["reasons"] == {"bad_event_time": 1, "bad_direction": 1, "bad_mode": 1}
    after = counts(service)
    assert after["dead_letters"] == before["dead_letters"] + 3
    assert after["checkins"] == before["checkins"] + 1
    # the same batch again (a scanner's retry) stores no second check-in
    assert client.post("/api/checkins", json=batch, headers=world.auth("scanner")).status_code == 202
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
        ({"venue_id": "EXISTING"}, 409, "is taken"),
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
    _refused(client.get("/api/traces/tr-nope/result", params={"purpose": "look"}, headers=world.auth("admin")), 404,
             "No finished trace")


def test_an_empty_batch_is_still_checked_for_the_role(client: TestClient, world: World) -> None:
    _refused(client.post("/api/checkins", json=[], headers=world.auth("epidemiologist")), 403, "may not")
    assert client.post("/api/checkins", json=[], headers=world.auth("scanner")).json()["received"] == 0


def test_a_chunked_oversized_body_is_refused_too(client: TestClient, world: World, service: ApiService) -> None:
    before = counts(service)

    def chunks():  # no Content-Length: the server must count
        yield b"["
        for _ in range(5000):
            yield b'{"scan_id": "' + b"x" * 1000 + b'"},'
        yield b"{}]"

    resp = client.post("/api/checkins", content=chunks(), headers={**world.auth("scanner"),
                                                                   "Content-Type": "application/json"})  # fmt: skip
    _refused(resp, 413, "too large")
    assert counts(service) == before


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/reports/coverage", {"as_of": "0001-01-01T00:00:00+07:00"}),
        ("/api/reports/trend", {"as_of": "9999-12-31T23:59:59+07:00"}),
        ("/api/reports/coverage/export", {"as_of": "0001-01-01T00:00:00+00:00"}),
        ("/api/reports/coverage", {"as_of": "2026-11-20T00:00:00"}),
        ("/api/audit", {"since": "2026-11-20T00:00:00"}),
    ],
)
def test_times_outside_reason_are_sentences(client: TestClient, world: World, path: str, params: dict) -> None:
    resp = client.get(path, params=params, headers=world.auth("admin"))
    _refused(resp, 400, "")
    assert "outside 2000-2100" in resp.json()["error"] or "UTC offset" in resp.json()["error"]


def test_blank_or_control_character_input_is_refused(client: TestClient, world: World, service: ApiService) -> None:
    before = counts(service)
    epi = world.auth("epidemiologist")
    _refused(client.post("/api/cases", headers=epi, json={"case_id": "BLANK-1", "person_id": "   ",
                         "infectious_from": "2026-11-20T00:00:00+07:00", "infectious_to": "2026-11-21T00:00:00+07:00"}),
             422, "person_id")  # fmt: skip
    _refused(client.post("/api/traces", headers=epi, json={"case_ids": ["DEMO-F0-1"], "purpose": "    "}), 422,
             "purpose")  # fmt: skip
    year_one = "0001-01-01T00:00:00+07:00"
    trace = {"case_ids": ["DEMO-F0-1"], "until": year_one}
    _refused(client.post("/api/traces", headers=epi, json={**trace, "purpose": "ok"}), 422, "purpose")
    _refused(client.post("/api/traces", headers=epi, json={**trace, "purpose": "testing"}), 400, "outside")
    _refused(client.post("/api/venues", headers=world.auth("commune_officer"), json={
        "venue_id": "CTRL-1", "name": "Quán\x01", "category": "market", "commune_code": world.commune_code,
        "capacity": 5}), 422, "name")  # fmt: skip
    _refused(client.get("/api/traces/tr-x/result", headers=epi), 422, "purpose")
    assert counts(service) == before


def test_spreadsheets_never_run_what_people_typed(client: TestClient, world: World) -> None:
    import io

    from openpyxl import load_workbook

    officer = world.auth("commune_officer")
    resp = client.post("/api/venues", headers=officer, json={"venue_id": "FORMULA-1", "name": "=HYPERLINK(\"x\")",
                                                             "category": "karaoke", "commune_code": world.commune_code,
                                                             "capacity": 5})  # fmt: skip
    assert resp.status_code == 201, resp.text
    xlsx = client.get("/api/reports/coverage/export", params={"format": "xlsx"}, headers=officer)
    silent = load_workbook(io.BytesIO(xlsx.content))["Cơ sở chưa quét"]
    names = [row[2] for row in silent.iter_rows(min_row=2, values_only=True)]
    assert "'=HYPERLINK(\"x\")" in names and not any(str(n).startswith("=") for n in names)


def test_scoped_callers_cannot_probe_which_venues_exist(client: TestClient, world: World) -> None:
    owner = world.auth("venue_owner")
    unknown = client.get("/api/venues/NO-SUCH-VENUE/poster.pdf", headers=owner)
    elsewhere = client.get("/api/venues/OT-MARKET/poster.pdf", headers=owner)
    assert unknown.status_code == elsewhere.status_code == 403
    assert unknown.json()["error"] == elsewhere.json()["error"]
