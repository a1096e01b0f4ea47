"""The front door's own metrics, as operators see them: scanner batches (one with a dead letter, one
refused, one answered 503) move the `front_door` counts of `GET /api/operations` by exactly what was
answered, and `GET /metrics` exposes the same `qrtrace_frontdoor_*` series in Prometheus text.

Counters live for the whole session (other API tests post check-ins too), so every check is a difference
between a reading taken before and one taken after this test's own requests."""

from __future__ import annotations

from collections import Counter

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from qrtrace.api.service import ApiService
from qrtrace.producers.front import CAUSES, OVERLOADED, FrontUnavailable
from tests.api.conftest import RECENT_DAY, World

pytestmark = pytest.mark.api

SERIES = ("qrtrace_frontdoor_requests_total", "qrtrace_frontdoor_scans_total", "qrtrace_frontdoor_answer_seconds",
          "qrtrace_frontdoor_unavailable_total", "qrtrace_frontdoor_queued_checkins")  # fmt: skip


def scan(world: World, n: int, **fields: object) -> dict:
    return {"scan_id": f"frontdoor-ops-{n}", "venue_id": world.venue_id, "person_id": f"09120300{n:02d}",
            "direction": "in", "event_time": f"{RECENT_DAY}T11:{n:02d}:00+07:00", "mode": "personal_qr",
            "scanner_id": "frontdoor-ops", **fields}  # fmt: skip


def front_door(client: TestClient, world: World) -> dict:
    resp = client.get("/api/operations", headers=world.auth("admin"))
    assert resp.status_code == 200, resp.text
    return resp.json()["front_door"]


def metrics(client: TestClient) -> dict[str, dict[tuple, float]]:
    """GET /metrics parsed: sample name -> {sorted label items: value}, for the front door's families."""
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain"), resp.text
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(resp.text):
        if family.name.startswith("qrtrace_frontdoor"):
            for s in family.samples:
                out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def moved(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """What a counter-by-label dict gained between two readings (labels that did not move are left out)."""
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def test_operations_front_door_counts_what_the_scanners_were_answered(
    client: TestClient, world: World, service: ApiService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two check-in batches and a single scan are answered 202 and counted as 3 answers of 202, 4 accepted
    scans and 1 dead letter (the bad direction); a body that is not a list is one 422, a caller without the
    scanner role one 403, and a front past capacity one 503 counted under its cause `overloaded`. The
    operations payload says what a 202 means here (embedded), carries answer-time percentiles in ms and an
    empty queue once everything is answered, and the causes it reports are the front's own."""
    before = front_door(client, world)
    assert before["kind"] == "embedded"
    scanner = world.auth("scanner")

    answers = [client.post("/api/checkins", json=[scan(world, 1), scan(world, 2)], headers=scanner),
               client.post("/api/checkins", json=[scan(world, 3), scan(world, 4, direction="sideways")],
                           headers=scanner),
               client.post("/api/checkins", json=[scan(world, 5)], headers=scanner)]  # fmt: skip
    assert [a.status_code for a in answers] == [202, 202, 202], [a.text for a in answers]
    assert [(a.json()["accepted"], a.json()["dead_lettered"]) for a in answers] == [(2, 0), (1, 1), (1, 0)]
    assert answers[1].json()["reasons"] == {"bad_direction": 1} and all(a.json()["stored"] for a in answers)
    assert client.post("/api/checkins", json={"scan_id": "x"}, headers=scanner).status_code == 422
    assert client.post("/api/checkins", json=[scan(world, 6)], headers=world.auth("epidemiologist")).status_code == 403

    def past_capacity(*_args: object, **_kwargs: object) -> None:
        raise FrontUnavailable("The server has more check-ins waiting than it can keep soon.", OVERLOADED)

    with monkeypatch.context() as patch:  # only this request: the session's front is given back at once
        patch.setattr(service.front, "submit", past_capacity)
        refused = client.post("/api/checkins", json=[scan(world, 7)], headers=scanner)
    assert refused.status_code == 503 and refused.headers["retry-after"].isdigit(), refused.text

    after = front_door(client, world)
    assert after["kind"] == "embedded"
    assert moved(after["requests"], before["requests"]) == {"202": 3, "422": 1, "403": 1, "503": 1}
    assert moved(after["scans"], before["scans"]) == {"accepted": 4, "dead_lettered": 1}
    assert moved(after["unavailable"], before["unavailable"]) == {OVERLOADED: 1}
    assert set(after["unavailable"]) <= set(CAUSES)
    p50, p99 = after["answer_ms_p50"], after["answer_ms_p99"]
    assert p50 is not None and p99 is not None and 0 < p50 <= p99, (p50, p99)
    assert after["queued_checkins"] == 0  # every request was answered: nothing waits for a pass


def test_metrics_exposes_the_front_door_series(client: TestClient, world: World) -> None:
    """GET /metrics (no token: Prometheus scrapes it) carries every `qrtrace_frontdoor_*` family; one more
    scanner batch with a dead letter moves its request, scan and histogram samples by one answer, and the
    figures agree with what /api/operations reports from the same counters."""
    before = metrics(client)
    resp = client.post("/api/checkins", json=[scan(world, 8), scan(world, 9, event_time="yesterday")],
                       headers=world.auth("scanner"))  # fmt: skip
    assert resp.status_code == 202 and resp.json()["dead_lettered"] == 1, resp.text
    text = client.get("/metrics").text
    for name in SERIES:
        kind = {"qrtrace_frontdoor_answer_seconds": "histogram", "qrtrace_frontdoor_queued_checkins": "gauge"}
        assert f"# TYPE {name} {kind.get(name, 'counter')}" in text, name
    after = metrics(client)

    def delta(sample: str, **labels: str) -> float:
        key = tuple(sorted(labels.items()))
        return after.get(sample, {}).get(key, 0.0) - before.get(sample, {}).get(key, 0.0)

    assert delta("qrtrace_frontdoor_requests_total", status="202") == 1
    assert delta("qrtrace_frontdoor_scans_total", verdict="accepted") == 1
    assert delta("qrtrace_frontdoor_scans_total", verdict="dead_lettered") == 1
    assert delta("qrtrace_frontdoor_answer_seconds_count") == 1
    assert delta("qrtrace_frontdoor_answer_seconds_bucket", le="+Inf") == 1
    buckets = sorted((float(dict(k)["le"]), v) for k, v in after["qrtrace_frontdoor_answer_seconds_bucket"].items())
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)  # cumulative buckets, as histogram_quantile needs
    assert after["qrtrace_frontdoor_queued_checkins"] == {(): 0.0}

    ops = front_door(client, world)
    assert ops["requests"] == {dict(k)["status"]: int(v) for k, v in after["qrtrace_frontdoor_requests_total"].items()}
    assert ops["scans"] == {dict(k)["verdict"]: int(v) for k, v in after["qrtrace_frontdoor_scans_total"].items()}
    assert sum(Counter(ops["requests"]).values()) == after["qrtrace_frontdoor_answer_seconds_count"][()]
