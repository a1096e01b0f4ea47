"""Every role against every endpoint, allowed and refused. The expected table is written out here, not
derived from qrtrace.access, so a change of policy has to change this file too."""

from __future__ import annotations

import itertools
import time

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import RECENT_DAY, World

pytestmark = pytest.mark.api

ROLES = ("scanner", "venue_owner", "commune_officer", "district_officer", "epidemiologist", "admin", "health_station")
ALL = frozenset(ROLES)
OFFICERS = frozenset({"commune_officer", "district_officer"})
EPI_ADMIN = frozenset({"epidemiologist", "admin"})
FOLLOWERS = frozenset({"health_station", "epidemiologist"})  # who follows contacts up (and may call them)

EXPECTED: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/api/me"): ALL,
    ("GET", "/api/communes"): ALL,
    ("GET", "/api/categories"): ALL,
    ("GET", "/api/venues"): ALL - {"scanner", "health_station"},
    ("POST", "/api/venues"): OFFICERS | {"admin"},
    ("POST", "/api/venues/{venue_id}/zones"): OFFICERS | {"admin"},
    ("GET", "/api/venues/{venue_id}/qr.png"): OFFICERS | {"venue_owner", "admin"},
    ("GET", "/api/venues/{venue_id}/qr.svg"): OFFICERS | {"venue_owner", "admin"},
    ("GET", "/api/venues/{venue_id}/poster.pdf"): OFFICERS | {"venue_owner", "admin"},
    ("POST", "/api/checkins"): frozenset({"scanner"}),
    ("POST", "/api/cases"): frozenset({"epidemiologist"}),
    ("GET", "/api/cases"): EPI_ADMIN,
    ("POST", "/api/traces"): EPI_ADMIN,
    ("GET", "/api/traces"): EPI_ADMIN,
    ("GET", "/api/rules"): EPI_ADMIN,
    ("GET", "/api/traces/{trace_id}"): EPI_ADMIN,
    ("GET", "/api/traces/{trace_id}/result"): EPI_ADMIN,
    ("GET", "/api/traces/{trace_id}/call-list"): EPI_ADMIN,
    ("POST", "/api/traces/{trace_id}/notifications"): frozenset({"epidemiologist"}),
    ("GET", "/api/traces/{trace_id}/notifications"): EPI_ADMIN,
    ("GET", "/api/reports/coverage"): OFFICERS | EPI_ADMIN,
    ("GET", "/api/reports/trend"): OFFICERS | EPI_ADMIN,
    ("GET", "/api/reports/coverage/export"): OFFICERS | {"admin"},
    ("GET", "/api/reports/hotspots"): OFFICERS | EPI_ADMIN,
    ("GET", "/api/operations"): frozenset({"admin"}),
    ("GET", "/api/audit"): frozenset({"admin"}),
    ("POST", "/api/exposure-sites"): EPI_ADMIN,
    ("GET", "/api/exposure-sites"): EPI_ADMIN,
    ("POST", "/api/exposure-sites/{site_id}/withdraw"): EPI_ADMIN,
    ("POST", "/api/venues/{venue_id}/paper-log"): OFFICERS | {"venue_owner"},
    ("GET", "/api/venues/{venue_id}/paper-log/template.xlsx"): OFFICERS | {"venue_owner"},
    ("POST", "/api/census"): OFFICERS | {"admin"},
    ("GET", "/api/census/matches"): OFFICERS | {"admin"},
    ("POST", "/api/census/link"): OFFICERS | {"admin"},
    ("GET", "/api/follow-ups"): FOLLOWERS | OFFICERS | {"admin"},
    ("GET", "/api/follow-ups/export"): FOLLOWERS | OFFICERS | {"admin"},
    ("GET", "/api/follow-ups/{follow_up_id}"): FOLLOWERS | OFFICERS | {"admin"},
    ("POST", "/api/follow-ups/{follow_up_id}"): FOLLOWERS,
    ("POST", "/api/follow-ups/{follow_up_id}/positive"): FOLLOWERS,
    ("GET", "/api/follow-ups/{follow_up_id}/contact"): FOLLOWERS,
    ("POST", "/api/traces/{trace_id}/follow-ups"): EPI_ADMIN,
}
CENSUS_ROLE_CSV = ("establishment_id,name,category,commune_code,address\n"
                   "ROLE-CS,Quán thử quyền,restaurant,{commune},Tổ 1\n")


def test_the_table_names_every_published_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    published = {(m.upper(), p) for p, ops in paths.items() if p.startswith("/api") for m in ops}
    assert published == set(EXPECTED)


@pytest.fixture(scope="session")
def finished_trace(client: TestClient, world: World) -> str:
    return run_trace(client, world, "epidemiologist", ["DEMO-F0-1"], purpose="role matrix fixture")


def run_trace(client: TestClient, world: World, who: str, case_ids: list[str], **body: object) -> str:
    """Start a trace and poll it (bounded) until it is done; returns its id."""
    resp = client.post("/api/traces", json={"case_ids": case_ids, "purpose": "testing", **body},
                       headers=world.auth(who))  # fmt: skip
    assert resp.status_code == 202, resp.text
    trace_id = resp.json()["trace_id"]
    _wait(client, world, who, trace_id)
    return trace_id


def read_result(client: TestClient, world: World, who: str, trace_id: str, purpose: str = "reading") -> dict:
    resp = client.get(f"/api/traces/{trace_id}/result", params={"purpose": purpose}, headers=world.auth(who))
    assert resp.status_code == 200, resp.text
    return resp.json()


def _wait(client: TestClient, world: World, who: str, trace_id: str) -> None:
    for _ in range(1200):  # bounded: a minute at most
        status = client.get(f"/api/traces/{trace_id}", headers=world.auth(who)).json()
        if status["status"] != "running":
            break
        time.sleep(0.05)
    assert status["status"] == "done", status


_serial = itertools.count()


def _open_records(client: TestClient, world: World) -> list[dict]:
    return client.get("/api/follow-ups", params={"commune": world.commune_code, "status": "not_reached"},
                      headers=world.auth("epidemiologist")).json()["follow_ups"]  # fmt: skip


def _request(client: TestClient, world: World, role: str, method: str, path: str, trace_id: str):  # type: ignore[no-untyped-def]
    url = path.replace("{venue_id}", world.venue_id).replace("{trace_id}", trace_id)
    if "{site_id}" in path:  # a site of the demo case (publishing is idempotent)
        site = client.post("/api/exposure-sites", json={"case_id": "DEMO-F0-1", "purpose": "role matrix"},
                           headers=world.auth("epidemiologist")).json()["sites"][0]["site_id"]  # fmt: skip
        url = path.replace("{site_id}", site)
    if "{follow_up_id}" in path:  # a not-yet-positive record of the demo commune (every scoped role's area)
        records = _open_records(client, world)
        if not records:  # the demo case's cohort follows the clock: trace a case of our own in the commune
            from tests.api.test_follow_up import STATION_CASE, seed_station_case

            seed_station_case(client, world)
            run_trace(client, world, "epidemiologist", [STATION_CASE], purpose="role matrix")
            records = _open_records(client, world)
        url = path.replace("{follow_up_id}", records[0]["follow_up_id"])
    n = next(_serial)
    bodies = {
        "/api/venues": {"venue_id": f"ROLE-{role}-{n}", "name": "Quán thử quyền", "category": "restaurant",
                        "commune_code": world.commune_code, "capacity": 20},
        "/api/checkins": [{"scan_id": f"role-{n}", "venue_id": world.venue_id, "person_id": "0912000001",
                           "direction": "in", "event_time": f"{RECENT_DAY}T09:00:00+07:00", "mode": "personal_qr",
                           "scanner_id": "role-test"}],
        "/api/cases": {"case_id": f"ROLE-CASE-{n}", "person_id": "0912000002",
                       "infectious_from": "2026-11-20T00:00:00+07:00", "infectious_to": "2026-11-22T00:00:00+07:00"},
        "/api/traces": {"case_ids": ["DEMO-F0-1"], "purpose": "role matrix"},
        "/api/exposure-sites": {"case_id": "DEMO-F0-1", "purpose": "role matrix"},
        "/api/exposure-sites/{site_id}/withdraw": {"purpose": "role matrix"},
        "/api/traces/{trace_id}/notifications": {"tier": "all", "purpose": "role matrix"},
        "/api/venues/{venue_id}/zones": {"zone": f"Khu thử quyền {role} {n}"},
        "/api/follow-ups/{follow_up_id}": {"note": f"role matrix {role}"},
        "/api/follow-ups/{follow_up_id}/positive": {"note": f"role matrix {role}"},
    }  # fmt: skip
    params = {"purpose": "role matrix"} if path.endswith(("call-list", "result", "export", "contact")) else None
    if role in ("commune_officer",) and path.startswith("/api/reports"):
        params = {"commune": world.commune_code}
    if path.endswith("/paper-log"):  # an XLSX body, not JSON
        from tests.api.test_paper_log import paper_sheet

        sheet = paper_sheet(world.venue_id, [("0912000009", "09:00")])
        return client.post(url, content=sheet, headers=world.auth(role))
    if path.startswith("/api/census"):  # the demo census links the demo venue to its establishment
        params = {"venue_id": world.venue_id} if path.endswith("matches") else None
        linked = client.get("/api/census/matches", params={"venue_id": world.venue_id},
                            headers=world.auth("admin")).json()["matches"][0]  # fmt: skip
        bodies["/api/census/link"] = {"venue_id": world.venue_id, "establishment_id": linked["establishment_id"]}
    if path == "/api/census":
        return client.post(url, content=CENSUS_ROLE_CSV.format(commune=world.commune_code).encode(),
                           headers={**world.auth(role), "Content-Type": "text/csv"})  # fmt: skip
    resp = client.request(method, url, json=bodies.get(path) if method == "POST" else None, params=params,
                          headers=world.auth(role))  # fmt: skip
    if path == "/api/traces" and method == "POST" and resp.status_code == 202:
        _wait(client, world, role, resp.json()["trace_id"])  # no job left running into later tests
    return resp


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path"), list(EXPECTED), ids=[f"{m} {p}" for m, p in EXPECTED])
def test_role_against_endpoint(client: TestClient, world: World, finished_trace: str, role: str, method: str,
                               path: str) -> None:  # fmt: skip
    resp = _request(client, world, role, method, path, finished_trace)
    if role in EXPECTED[(method, path)]:
        assert 200 <= resp.status_code < 300, f"{role} {method} {path}: {resp.status_code} {resp.text[:300]}"
    else:
        assert resp.status_code == 403, f"{role} {method} {path}: {resp.status_code} {resp.text[:300]}"
        assert set(resp.json()) == {"error"} and resp.json()["error"].endswith(".")


@pytest.mark.parametrize(("method", "path"), list(EXPECTED), ids=[f"{m} {p}" for m, p in EXPECTED])
def test_every_endpoint_needs_a_token(client: TestClient, world: World, method: str, path: str) -> None:
    url = path.replace("{venue_id}", world.venue_id).replace("{trace_id}", "tr-x").replace("{site_id}", "es-x")
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, world.auth("expired")):
        resp = client.request(method, url, headers=headers, json={} if method == "POST" else None)
        assert resp.status_code == 401, (headers, resp.text)
        assert resp.headers["www-authenticate"] == "Bearer"
    assert "expired" in client.get("/api/me", headers=world.auth("expired")).json()["error"]
