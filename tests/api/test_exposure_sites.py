"""Exposure sites over the API: epidemiologists publish and withdraw (audited, idempotent, role and scope
checked); the public reads the active sites without a token, as JSON, CSV and a page, with no person in
any answer; the public data is rate-limited per client address and cached with an ETag."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from qrtrace.api.service import ApiService
from qrtrace.producers.edge import IDENTITY_CONTEXT
from tests.api.conftest import World

pytestmark = pytest.mark.api
SITES = "/api/exposure-sites"
PUBLIC_JSON, PUBLIC_CSV = "/public/exposure-sites.json", "/public/exposure-sites.csv"


@pytest.fixture(scope="module")
def public(client: TestClient) -> TestClient:
    """The public, from an address of its own (the fuzz tests' requests never exhaust its budget)."""
    return TestClient(client.app, raise_server_exceptions=False, client=("198.51.100.7", 40000))


@pytest.fixture(scope="module")
def published(client: TestClient, world: World) -> dict:
    resp = client.post(SITES, json={"case_id": "DEMO-F0-1", "purpose": "public list for the demo case"},
                       headers=world.auth("epidemiologist"))  # fmt: skip
    assert resp.status_code == 201, resp.text
    return resp.json()


def _audit(client: TestClient, world: World, action: str) -> list[dict]:
    resp = client.get("/api/audit", params={"limit": 5000, "action": action}, headers=world.auth("admin"))
    assert resp.status_code == 200, resp.text
    return resp.json()


def _public_sites(public: TestClient, **params: str) -> list[dict]:
    resp = public.get(PUBLIC_JSON, params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()["sites"]


def test_an_epidemiologist_publishes_the_demo_cases_sites(client: TestClient, world: World, published: dict) -> None:
    sites = published["sites"]
    assert published["case_id"] == "DEMO-F0-1" and sites
    for s in sites:
        assert s["from"].endswith("+07:00") and s["to"].endswith("+07:00") and s["from"] < s["to"]
        assert s["case_id"] == "DEMO-F0-1" and s["status"] == "active" and s["venue_name"]
    # Every F1 of the demo's own trace was exposed during a published window at the venue of the exposure.
    windows = [(s["venue_id"], datetime.fromisoformat(s["from"]), datetime.fromisoformat(s["to"])) for s in sites]
    f1 = [e for c in world.demo_trace["contacts"] if c["hop"] == 1 for e in c["exposures"]]
    assert f1
    for e in f1:
        start = datetime.fromisoformat(e["start"])
        assert any(v == e["venue_id"] and lo <= start < hi for v, lo, hi in windows), e
    entries = [e for e in _audit(client, world, "publish_exposure_sites") if e["case_id"] == "DEMO-F0-1"]
    assert entries and entries[0]["actor"] == "demo-epidemiologist"
    assert entries[0]["purpose"] == "public list for the demo case"
    assert set(entries[0]["detail"]["sites"]) == {s["site_id"] for s in sites}


def test_publishing_again_is_idempotent(client: TestClient, world: World, published: dict,
                                        service: ApiService) -> None:  # fmt: skip
    again = client.post(SITES, json={"case_id": "DEMO-F0-1", "purpose": "published twice"},
                        headers=world.auth("epidemiologist"))  # fmt: skip
    assert again.status_code == 201 and again.json()["written"] == 0
    assert [s["site_id"] for s in again.json()["sites"]] == [s["site_id"] for s in published["sites"]]
    # by the raw identifier and the same window: the same sites (the id is the case's, not the route's)
    case = world.demo_trace
    by_person = client.post(SITES, json={"person_id": case["case"], "from": case["window"]["from"],
                                         "to": case["window"]["to"], "purpose": "by identifier"},
                            headers=world.auth("epidemiologist"))  # fmt: skip
    assert by_person.status_code == 201, by_person.text
    assert by_person.json()["written"] == 0
    assert {s["site_id"] for s in by_person.json()["sites"]} == {s["site_id"] for s in published["sites"]}
    with service._lock:
        rows = service.rt.store.query("SELECT count() AS n, uniqExact(site_id) AS u FROM qrtrace.exposure_sites")
    assert rows["n"][0] == rows["u"][0]  # no site stored twice


def test_publishing_needs_the_right_to_trace(client: TestClient, world: World) -> None:
    body = {"case_id": "DEMO-F0-1", "purpose": "not mine to publish"}
    assert client.post(SITES, json=body).status_code == 401
    for role in ("scanner", "venue_owner", "commune_officer", "district_officer"):
        resp = client.post(SITES, json=body, headers=world.auth(role))
        assert resp.status_code == 403 and set(resp.json()) == {"error"}, (role, resp.text)
        assert client.get(SITES, headers=world.auth(role)).status_code == 403
        assert client.post(f"{SITES}/es-0000/withdraw", json={"purpose": "not mine"},
                           headers=world.auth(role)).status_code == 403  # fmt: skip
    # an admin may publish a declared case, but may not name a person (it cannot declare cases either)
    case = world.demo_trace
    resp = client.post(SITES, json={"person_id": case["case"], "from": case["window"]["from"],
                                    "to": case["window"]["to"], "purpose": "admin naming a person"},
                       headers=world.auth("admin"))  # fmt: skip
    assert resp.status_code == 403, resp.text


def test_a_case_without_visits_in_the_window_is_one_sentence(client: TestClient, world: World) -> None:
    resp = client.post(SITES, json={"person_id": "0900000000", "from": "2021-07-20T00:00:00+07:00",
                                    "to": "2021-07-21T00:00:00+07:00", "purpose": "nobody there"},
                       headers=world.auth("epidemiologist"))  # fmt: skip
    assert resp.status_code == 400 and "no visit in the window" in resp.json()["error"]
    assert client.post(SITES, json={"case_id": "NO-SUCH-CASE", "purpose": "missing"},
                       headers=world.auth("epidemiologist")).status_code == 404  # fmt: skip
    both = client.post(SITES, json={"case_id": "DEMO-F0-1", "person_id": "0900000000", "purpose": "both"},
                       headers=world.auth("epidemiologist"))  # fmt: skip
    assert both.status_code == 400 and set(both.json()) == {"error"}


def test_the_public_list_needs_no_token(public: TestClient, published: dict) -> None:
    sites = _public_sites(public)
    assert {s["site_id"] for s in published["sites"]} <= {s["site_id"] for s in sites}
    for s in sites:
        assert tuple(s) == ("site_id", "venue_id", "venue_name", "commune_code", "commune_name", "category",
                            "category_name", "from", "to", "advice", "published_at")  # fmt: skip
    resp = public.get(PUBLIC_CSV, params={"lang": "en"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(resp.text.lstrip("\ufeff"))))
    assert rows[0][:3] == ["Site", "Venue id", "Venue"] and len(rows) == len(sites) + 1
    page = public.get("/public/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert "<script>" not in page.text and "http://" not in page.text and "https://" not in page.text
    for src in re.findall(r'(?:src|href)="(/public/[^"?]+)"', page.text):
        asset = public.get(src)
        assert asset.status_code == 200 and len(asset.content) > 100, src
    assert public.get("/public", follow_redirects=False).status_code in (301, 302, 307)
    vi, en = _public_sites(public), _public_sites(public, lang="en")
    assert vi[0]["advice"] != en[0]["advice"] and vi[0]["category_name"] != en[0]["category_name"]


def test_the_public_filters_by_commune_and_local_day(public: TestClient, published: dict) -> None:
    first = published["sites"][0]
    mine = _public_sites(public, commune=first["commune_code"])
    assert mine and {s["commune_code"] for s in mine} == {first["commune_code"]}
    assert first["site_id"] in {s["site_id"] for s in mine}
    day = first["from"][:10]
    that_day = _public_sites(public, date=day)
    assert first["site_id"] in {s["site_id"] for s in that_day}
    assert all(s["from"][:10] <= day <= s["to"][:10] for s in that_day)
    assert _public_sites(public, date="2001-01-01") == []
    assert _public_sites(public, commune="99999") == []
    bad = public.get(PUBLIC_JSON, params={"date": "20/07/2021"})
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.json()["error"]
    assert public.get(PUBLIC_JSON, params={"commune": "x'; DROP"}).status_code == 422


def _everyone(service: ApiService, world: World) -> set[str]:
    """Every raw identifier and every pseudonym of the store: people who visited, cases, the vault."""
    with service._lock:
        store = service.rt.store
        persons = set(store.query("SELECT DISTINCT person FROM qrtrace.visits_by_person")["person"])
        persons |= set(store.query("SELECT DISTINCT person FROM qrtrace.cases")["person"])
        vault = store.query("SELECT person, identifier_sealed FROM qrtrace.identity_vault FINAL")
    raw = {service.rt.vault.open(s, IDENTITY_CONTEXT) for s in vault["identifier_sealed"]}
    persons |= set(vault["person"])
    raw |= {c["person_id"] for c in world.demo_trace["contacts"]} | {world.demo_trace["case"]}
    assert len(persons) > 1000 and len(raw) > 1000  # the demo's people, not an empty scan
    return persons | raw


def test_no_public_answer_names_a_person(public: TestClient, service: ApiService, world: World,
                                         published: dict) -> None:  # fmt: skip
    people = _everyone(service, world)
    first = published["sites"][0]
    answers = []
    for lang in ("vi", "en"):
        for params in ({}, {"commune": first["commune_code"]}, {"date": first["from"][:10]}):
            for path in (PUBLIC_JSON, PUBLIC_CSV):
                resp = public.get(path, params={"lang": lang, **params})
                assert resp.status_code == 200
                answers.append(resp.text)
    page = public.get("/public/")
    answers.append(page.text)
    for src in re.findall(r'(?:src|href)="(/public/[^"?]+)"', page.text):
        answers.append(public.get(src).text)
    assert any(first["site_id"] in a for a in answers)
    for text in answers:
        leaked = [p for p in people if p in text]
        assert not leaked, leaked[:3]
        for internal in ("DEMO-F0-1", "demo-epidemiologist", "case_id", "case_person", "published_by", "purpose"):
            assert internal not in text


def test_the_public_list_has_an_etag_and_a_short_public_cache(public: TestClient, client: TestClient,
                                                              world: World, published: dict) -> None:  # fmt: skip
    first = public.get(PUBLIC_JSON)
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "public, max-age=60" and etag.startswith('"')
    again = public.get(PUBLIC_JSON, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert again.headers["cache-control"] == "public, max-age=60"
    assert public.get(PUBLIC_JSON, headers={"If-None-Match": '"other"'}).status_code == 200
    csv_tag = public.get(PUBLIC_CSV).headers["etag"]
    assert csv_tag != etag and public.get(PUBLIC_CSV, headers={"If-None-Match": csv_tag}).status_code == 304
    # the internal list is never cached; the public one is not under /api
    assert client.get(SITES, headers=world.auth("epidemiologist")).headers["cache-control"] == "no-store"


def test_withdrawing_removes_a_site_from_the_public_answers(public: TestClient, client: TestClient, world: World,
                                                            published: dict) -> None:  # fmt: skip
    site = published["sites"][-1]["site_id"]
    before = public.get(PUBLIC_JSON)
    csv_before = public.get(PUBLIC_CSV).text
    assert site in before.text and site in csv_before
    purpose = f"wrong venue ({uuid.uuid4().hex[:6]})"
    resp = client.post(f"{SITES}/{site}/withdraw", json={"purpose": purpose}, headers=world.auth("epidemiologist"))
    assert resp.status_code == 200 and resp.json()["status"] == "withdrawn", resp.text
    assert resp.json()["withdrawn_by"] == "demo-epidemiologist"
    after = public.get(PUBLIC_JSON, headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200 and site not in after.text  # the cache was emptied: a new answer
    assert site not in public.get(PUBLIC_CSV).text
    assert site not in {s["site_id"] for s in client.get(SITES, headers=world.auth("epidemiologist")).json()}
    listed = client.get(SITES, params={"all": "true"}, headers=world.auth("epidemiologist")).json()
    assert {s["site_id"]: s["status"] for s in listed}[site] == "withdrawn"
    entries = [e for e in _audit(client, world, "withdraw_exposure_sites") if e["purpose"] == purpose]
    assert len(entries) == 1 and entries[0]["detail"]["sites"] == [site]
    assert entries[0]["actor"] == "demo-epidemiologist" and entries[0]["case_id"] == "DEMO-F0-1"
    missing = client.post(f"{SITES}/es-nope/withdraw", json={"purpose": "no such"},
                          headers=world.auth("epidemiologist"))  # fmt: skip
    assert missing.status_code == 404 and set(missing.json()) == {"error"}
    # publishing the case again puts it back (an explicit, audited act)
    back = client.post(SITES, json={"case_id": "DEMO-F0-1", "purpose": "withdrawn by mistake"},
                       headers=world.auth("epidemiologist"))  # fmt: skip
    assert back.status_code == 201 and back.json()["written"] == 1
    assert site in public.get(PUBLIC_JSON).text


def test_the_public_data_is_rate_limited_per_client_address(client: TestClient, service: ApiService) -> None:
    greedy = TestClient(client.app, raise_server_exceptions=False, client=("203.0.113.9", 40001))
    other = TestClient(client.app, raise_server_exceptions=False, client=("203.0.113.10", 40002))
    limit = service.settings.public_requests_per_minute
    refused = None
    for _ in range(2 * limit + 2):  # fixed one-minute windows: two windows at most in this loop
        resp = greedy.get(PUBLIC_JSON)
        if resp.status_code == 429:
            refused = resp
            break
        assert resp.status_code == 200
    assert refused is not None, "no 429 after twice the limit"
    assert set(refused.json()) == {"error"} and "Too many requests" in refused.json()["error"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert greedy.get(PUBLIC_CSV).status_code == 429  # per address, whatever the format
    assert other.get(PUBLIC_JSON).status_code == 200  # another address is not held back
