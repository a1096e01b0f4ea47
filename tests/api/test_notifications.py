"""Notifications on a stored trace through the API: only re-identifying roles may send, the gateway is the
server's setting (a gateway in the request is refused, never used), statuses are readable, sending twice
sends nothing twice, and the phone numbers opened are audited."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from qrtrace.api.service import ApiService
from tests.api.conftest import World
from tests.api.test_roles import read_result, run_trace

pytestmark = pytest.mark.api
PURPOSE = "notify the contacts of DEMO-F0-1"


@pytest.fixture
def gateway_file(service: ApiService, tmp_path: Path) -> Iterator[Path]:
    """The server's gateway setting for one test: a file (what an office sending by hand uses)."""
    before = service.settings
    path = tmp_path / "outbox.jsonl"
    service.settings = dataclasses.replace(before, notify_gateway=f"file:{path}")
    yield path
    service.settings = before


def _statuses(client: TestClient, world: World, trace_id: str, who: str = "epidemiologist") -> dict:
    resp = client.get(f"/api/traces/{trace_id}/notifications", headers=world.auth(who))
    assert resp.status_code == 200, resp.text
    return resp.json()


def _settled(client: TestClient, world: World, trace_id: str) -> dict:
    for _ in range(600):  # bounded: 30 s
        doc = _statuses(client, world, trace_id)
        if doc["counts"]["queued"] == 0:
            return doc
        time.sleep(0.05)
    raise AssertionError(f"messages still queued: {doc['counts']}")


def _notify_audit(service: ApiService) -> list[dict]:
    with service._lock:
        rows = service.rt.store.query("SELECT actor, action, case_id, subject, purpose, detail FROM qrtrace.audit_log "
                                      "WHERE action IN ('notify', 'notify_request') ORDER BY seq")  # fmt: skip
    return [dict(zip(rows, r, strict=True)) for r in zip(*rows.values(), strict=True)]


@pytest.fixture(scope="module")
def own_trace(client: TestClient, world: World) -> tuple[str, int]:
    """A case of this module's own (an F1 of the demo case): its messages are sent by no other test."""
    f1 = next(c for c in world.demo_trace["contacts"] if c["hop"] == 1)
    window = world.demo_trace["window"]
    resp = client.post("/api/cases", headers=world.auth("epidemiologist"), json={
        "case_id": "NOTIFY-1", "person_id": f1["person_id"], "infectious_from": window["from"],
        "infectious_to": window["to"]})  # fmt: skip
    assert resp.status_code == 201, resp.text
    trace_id = run_trace(client, world, "epidemiologist", ["NOTIFY-1"], until=world.demo_trace["rules"]["until"])
    contacts = len(read_result(client, world, "epidemiologist", trace_id)["cases"][0]["contacts"])
    return trace_id, contacts


def test_notifications_are_sent_once_by_a_reidentifying_role_through_the_server_gateway(
    client: TestClient, world: World, service: ApiService, gateway_file: Path, own_trace: tuple[str, int]
) -> None:
    trace_id, contacts = own_trace
    url = f"/api/traces/{trace_id}/notifications"
    for who in ("admin", "district_officer", "commune_officer"):
        resp = client.post(url, json={"tier": "all", "purpose": PURPOSE}, headers=world.auth(who))
        assert resp.status_code == 403, (who, resp.text)
    # A caller cannot choose where the numbers go: the field is refused and nothing is queued or written.
    resp = client.post(url, json={"tier": "all", "purpose": PURPOSE, "gateway": "webhook:http://127.0.0.1:9/x"},
                       headers=world.auth("epidemiologist"))  # fmt: skip
    assert resp.status_code == 422 and "gateway" in resp.json()["error"]
    assert _statuses(client, world, trace_id)["counts"] == {"queued": 0, "sent": 0, "failed": 0}
    assert not gateway_file.exists()

    resp = client.post(url, json={"tier": "all", "purpose": PURPOSE}, headers=world.auth("epidemiologist"))
    assert resp.status_code == 202, resp.text
    queued = resp.json()
    assert queued["messages"] == queued["new"] == contacts > 0
    doc = _settled(client, world, trace_id)
    assert doc["counts"]["sent"] + doc["counts"]["failed"] == contacts and doc["counts"]["sent"] > 0
    assert all(m["reason"] == "no phone number" for m in doc["messages"] if m["status"] == "failed")
    lines = [orjson.loads(line) for line in gateway_file.read_bytes().splitlines()]
    assert len(lines) == doc["counts"]["sent"] == len({m["message_id"] for m in lines})
    assert "to" in lines[0] and "Thông báo y tế" in lines[0]["text"]
    assert all("to" not in m and "person" not in m for m in doc["messages"])  # statuses hold no number, no person

    again = client.post(url, json={"tier": "all", "purpose": PURPOSE}, headers=world.auth("epidemiologist")).json()
    assert again["new"] == 0
    assert _settled(client, world, trace_id)["counts"] == doc["counts"]
    assert len(gateway_file.read_bytes().splitlines()) == len(lines)  # nothing sent twice
    assert _statuses(client, world, trace_id, "admin")["counts"] == doc["counts"]  # statuses: pseudonymous
    resp = client.get(url, headers=world.auth("commune_officer"))
    assert resp.status_code == 403

    audit = _notify_audit(service)
    opened = [e for e in audit if e["action"] == "notify" and e["case_id"] == "NOTIFY-1"]
    assert opened and all(e["actor"] == "demo-epidemiologist" and e["purpose"] == PURPOSE for e in opened)
    assert sum(orjson.loads(e["detail"])["opened"] for e in opened) >= doc["counts"]["sent"]
    requests = [e for e in audit if e["action"] == "notify_request" and e["subject"] == trace_id]
    assert len(requests) == 2


def test_without_a_gateway_setting_nothing_is_queued(client: TestClient, world: World, service: ApiService) -> None:
    trace_id = run_trace(client, world, "epidemiologist", ["DEMO-F0-1"], until=world.demo_trace["rules"]["until"],
                         depth=1)  # fmt: skip
    before, service.settings = service.settings, dataclasses.replace(service.settings, notify_gateway=None)
    try:
        resp = client.post(f"/api/traces/{trace_id}/notifications", json={"purpose": PURPOSE},
                           headers=world.auth("epidemiologist"))  # fmt: skip
    finally:
        service.settings = before
    assert resp.status_code == 409 and "QRTRACE_NOTIFY_GATEWAY" in resp.json()["error"]
    assert _statuses(client, world, trace_id)["counts"]["queued"] == 0
    resp = client.get("/api/traces/tr-nosuch/notifications", headers=world.auth("epidemiologist"))
    assert resp.status_code == 404


def test_a_run_stored_before_tiers_is_not_notified_as_casual(client: TestClient, world: World, service: ApiService,
                                                              gateway_file: Path) -> None:  # fmt: skip
    """A run stored before risk tiers has no rule in its header: its contacts' tiers are unknown, so notifying
    it is a 409 that says to run it again (not every contact told it was casual)."""
    from qrtrace.queries.trace import TraceRules
    from qrtrace.sinks.trace_runs import write_run

    header = {"case": "p-old", "case_id": "OLD-1", "window": {}, "rules": {}, "rule": None, "contacts_count": 0,
              "exposure_rows": 0}  # fmt: skip
    with service._lock:
        write_run(service.rt.store, "tr-before-tiers", 1, 2, "old-version", ["OLD-1"], "old run", TraceRules(),
                  [header])  # fmt: skip
    resp = client.post("/api/traces/tr-before-tiers/notifications", json={"tier": "close", "purpose": "testing"},
                       headers=world.auth("epidemiologist"))  # fmt: skip
    assert resp.status_code == 409 and "before risk tiers" in resp.json()["error"]
    assert not gateway_file.exists() or not gateway_file.read_bytes()
