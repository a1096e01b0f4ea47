"""Every trace, export and re-identification is in the audit log with actor, time, case and purpose;
the log is append-only from the API and readable by admins only."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import World
from tests.api.test_roles import read_result, run_trace

pytestmark = pytest.mark.api


def _entries(client: TestClient, world: World, **params: str) -> list[dict]:
    resp = client.get("/api/audit", params={"limit": 5000, **params}, headers=world.auth("admin"))
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_trace_reidentification_and_exports_are_audited(client: TestClient, world: World) -> None:
    purpose = f"F1 calls for ward 3 ({uuid.uuid4().hex[:6]})"
    trace_id = run_trace(client, world, "epidemiologist", ["DEMO-F0-1"], purpose=purpose)
    traced = [e for e in _entries(client, world, action="trace") if e["purpose"] == purpose]
    assert len(traced) == 1
    assert traced[0]["actor"] == "demo-epidemiologist" and traced[0]["case_id"] == "DEMO-F0-1"
    assert traced[0]["at"].endswith("+07:00") and traced[0]["detail"]["contacts"] > 0

    view = f"reading the cohort ({uuid.uuid4().hex[:6]})"
    read_result(client, world, "epidemiologist", trace_id, purpose=view)
    reid = [e for e in _entries(client, world, action="reidentify") if e["purpose"] == view]
    assert len(reid) == 1 and reid[0]["actor"] == "demo-epidemiologist" and reid[0]["case_id"] == "DEMO-F0-1"
    assert reid[0]["detail"]["count"] > 0

    export = f"call list for the commune team ({uuid.uuid4().hex[:6]})"
    resp = client.get(f"/api/traces/{trace_id}/call-list", params={"purpose": export, "format": "xlsx"},
                      headers=world.auth("epidemiologist"))  # fmt: skip
    assert resp.status_code == 200
    exported = [e for e in _entries(client, world, action="export_call_list") if e["purpose"] == export]
    assert len(exported) == 1 and exported[0]["subject"] == trace_id and exported[0]["detail"]["format"] == "xlsx"
    assert exported[0]["detail"]["reidentified"] is True
    assert [e for e in _entries(client, world, action="reidentify") if e["purpose"] == export]  # the export opened it

    report = f"daily report ({uuid.uuid4().hex[:6]})"
    resp = client.get("/api/reports/coverage/export", params={"purpose": report},
                      headers=world.auth("commune_officer"))  # fmt: skip
    assert resp.status_code == 200, resp.text
    cov = [e for e in _entries(client, world, action="export_coverage") if e["purpose"] == report]
    assert len(cov) == 1 and cov[0]["actor"] == "demo-commune-officer"


def test_a_role_without_reidentification_leaves_no_reidentify_entry(client: TestClient, world: World) -> None:
    trace_id = run_trace(client, world, "admin", ["DEMO-F0-1"], purpose="admin check")
    marker = f"admin reads ({uuid.uuid4().hex[:6]})"
    read_result(client, world, "admin", trace_id, purpose=marker)
    assert not [e for e in _entries(client, world, action="reidentify") if e["purpose"] == marker]


def test_declaring_a_case_is_audited_and_never_replaces_one(client: TestClient, world: World) -> None:
    case = {"case_id": f"AUDIT-{uuid.uuid4().hex[:6]}", "person_id": "0912999001",
            "infectious_from": "2026-11-20T00:00:00+07:00", "infectious_to": "2026-11-22T00:00:00+07:00"}  # fmt: skip
    epi = world.auth("epidemiologist")
    assert client.post("/api/cases", json=case, headers=epi).status_code == 201
    again = client.post("/api/cases", json={**case, "person_id": "0912999002"}, headers=epi)
    assert again.status_code == 409 and "already declared" in again.json()["error"]
    declared = _entries(client, world, action="declare_case", case_id=case["case_id"])
    assert len(declared) == 1 and declared[0]["actor"] == "demo-epidemiologist"
    assert "0912999001" not in str(declared)  # the pseudonym is logged, never the identifier


def test_the_audit_log_is_append_only_from_the_api(client: TestClient, world: World) -> None:
    since = "2026-01-01T00:00:00+07:00"
    before = len(_entries(client, world, since=since))
    assert before < 5000  # the count below means something
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        resp = client.request(method, "/api/audit", headers=world.auth("admin"))
        assert resp.status_code == 405 and "not allowed" in resp.json()["error"]
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/api/audit"]) == {"get"}
    assert not [p for p in paths if "audit" in p and p != "/api/audit"]
    assert len(_entries(client, world, since=since)) == before
