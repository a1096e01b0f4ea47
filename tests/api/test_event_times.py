"""Issue 10's red-team sequence against the API: a scanner's far-future check-in and a decades-long
visit are dead letters with reasons (202: the batch is usable, those records are data), and traces of
every case keep working."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import World
from tests.api.test_roles import read_result, run_trace

pytestmark = pytest.mark.api


def _scan(world: World, n: int, direction: str, event_time: str) -> dict:
    return {"scan_id": f"red-team-{n}", "venue_id": world.venue_id, "person_id": "0912999000",
            "direction": direction, "event_time": event_time, "mode": "personal_qr", "scanner_id": "red"}  # fmt: skip


def test_far_future_and_decades_long_visit_are_dead_letters_and_traces_work(client: TestClient, world: World,
                                                                          service) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    recent = (datetime.now(UTC) - timedelta(hours=2)).isoformat(timespec="seconds")
    far = [_scan(world, 1, "in", "9999-12-31T23:59:59+14:00")]
    resp = client.post("/api/checkins", headers=world.auth("scanner"), json=far)
    assert resp.status_code == 202, resp.text
    assert resp.json()["reasons"] == {"event_time_in_future": 1} and resp.json()["accepted"] == 0
    resp = client.post("/api/checkins", headers=world.auth("scanner"),
                       json=[_scan(world, 2, "in", "1960-01-01T08:00:00+07:00"), _scan(world, 3, "out", recent)])
    assert resp.status_code == 202, resp.text
    assert resp.json()["reasons"] == {"event_time_too_old": 1}
    person = service.rt.pseudonymiser.one("0912999000")
    with service._lock:  # by key, not count(): a background merge may fold earlier tests' duplicates meanwhile
        visits = service.rt.store.query("SELECT count() AS n FROM qrtrace.visits_by_venue WHERE person = {p:String}",
                                        {"p": person})["n"][0]  # fmt: skip
        letters = service.rt.store.query("SELECT reason FROM qrtrace.dead_letters FINAL "
                                         "WHERE payload_redacted LIKE '%red-team-%' ORDER BY reason")["reason"]
        outcome = service.rt.store.query("SELECT outcome FROM qrtrace.checkin_outcomes FINAL "
                                         "WHERE scan_id LIKE 'red-team-%'")["outcome"]  # fmt: skip
    assert letters == ["event_time_in_future", "event_time_too_old"]
    assert outcome == ["unmatched_checkout"]  # a dead letter only once no earlier check-in can still arrive
    assert visits == 0  # the lone check-out opened nothing, the ancient check-in was not paired
    rules = world.demo_trace["rules"]
    trace_id = run_trace(client, world, "epidemiologist", ["DEMO-F0-1"], until=rules["until"], depth=rules["depth"],
                         grace_minutes=rules["grace_minutes"])  # fmt: skip
    case = read_result(client, world, "epidemiologist", trace_id)["cases"][0]
    assert _shape(case["contacts"]) == _shape(world.demo_trace["contacts"])


def _shape(contacts: list[dict]) -> list[tuple]:
    # Who, at which hop, from when, where: the cohort (how a source's identifier is spelled is the vault's).
    return sorted(
        (c["person_id"], c["hop"], c["first_exposure"], tuple(sorted((e["venue_id"], e["start"], e["end"])
                                                                     for e in c["exposures"])))
        for c in contacts
    )  # fmt: skip
