"""`qrtrace serve` keeps the trace index warm: a scan answered 202 is in the next traces once the follower
has caught up (it polls the visit feed twice a second), with no restart and no rebuild."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from qrtrace.api.service import ApiService
from tests.api.conftest import RECENT_DAY, World
from tests.api.test_roles import read_result, run_trace

pytestmark = pytest.mark.api


def test_a_scan_stored_through_the_front_door_is_traceable_without_a_restart(
    client: TestClient, world: World, service: ApiService
) -> None:
    follower = service.rt.trace_index()  # the index the service opened at start, followed by a thread
    scanner, epi = world.auth("scanner"), world.auth("epidemiologist")
    at = f"{RECENT_DAY}T15:"
    case_phone, contact_phone = "0912999001", "0912999002"
    scans = [{"scan_id": f"fresh-{i}", "venue_id": world.venue_id, "person_id": person, "direction": "in",
              "event_time": f"{at}{minute}:00+07:00", "mode": "personal_qr", "scanner_id": "freshness"}
             for i, (person, minute) in enumerate([(case_phone, "00"), (contact_phone, "10")])]  # fmt: skip
    resp = client.post("/api/cases", headers=epi, json={
        "case_id": "FRESH-1", "person_id": case_phone, "infectious_from": f"{RECENT_DAY}T00:00:00+07:00",
        "infectious_to": f"{RECENT_DAY}T23:59:00+07:00"})  # fmt: skip
    assert resp.status_code == 201, resp.text
    before = follower.refreshed_at
    answer = client.post("/api/checkins", json=scans, headers=scanner)
    assert answer.status_code == 202 and answer.json()["accepted"] == 2, answer.text
    stored = time.monotonic()
    # A catch-up that began before the 202 may have missed the scan: wait for one that began after it.
    for _ in range(100):  # bounded: ten seconds at most, while the follower polls every half second
        started, ended = follower.refresh_started_at, follower.refreshed_at  # read once: it moves meanwhile
        if started > max(before, stored) and ended > started:
            break
        time.sleep(0.1)
    assert ended > started > stored, "the follower never caught up"
    trace_id = run_trace(client, world, "epidemiologist", ["FRESH-1"], until=f"{RECENT_DAY}T23:59:00+07:00")
    contacts = read_result(client, world, "epidemiologist", trace_id)["cases"][0]["contacts"]
    assert contact_phone in [c["person_id"] for c in contacts]
    assert service.rt.trace_index() is follower  # caught up from the feed: the same warm index, no reopen
