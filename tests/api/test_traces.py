"""Traces through the API equal the CLI's (the same core), batch traces combine cases, downloads open."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from tests.api.conftest import World
from tests.api.test_roles import read_result, run_trace

pytestmark = pytest.mark.api


def _shape(contacts: list[dict]) -> list[tuple]:
    # Exposures as a sorted tuple: their order within a contact is not part of the contract.
    return sorted((c["person_id"], c["hop"], c["first_exposure"],
                   tuple(sorted((e["venue_id"], e["start"], e["end"], e["source_person_id"]) for e in c["exposures"])))
                  for c in contacts)  # fmt: skip


def test_the_api_trace_equals_the_demo_trace(client: TestClient, world: World) -> None:
    rules = world.demo_trace["rules"]
    trace_id = run_trace(client, world, "epidemiologist", ["DEMO-F0-1"], until=rules["until"], depth=rules["depth"],
                         grace_minutes=rules["grace_minutes"])  # fmt: skip
    result = read_result(client, world, "epidemiologist", trace_id)
    case = result["cases"][0]
    assert case["reidentified"] is True and case["case"] == world.demo_trace["case"]
    assert _shape(case["contacts"]) == _shape(world.demo_trace["contacts"])
    assert {1, 2} <= {c["hop"] for c in case["contacts"]}
    assert any(c["contact"] for c in case["contacts"])  # phone numbers, from the vault


def test_progress_is_reported_and_a_batch_combines_its_cases(client: TestClient, world: World) -> None:
    contacts = world.demo_trace["contacts"]
    f1 = next(c for c in contacts if c["hop"] == 1)
    resp = client.post("/api/cases", headers=world.auth("epidemiologist"), json={
        "case_id": "BATCH-2", "person_id": f1["person_id"], "infectious_from": world.demo_trace["window"]["from"],
        "infectious_to": world.demo_trace["window"]["to"]})  # fmt: skip
    assert resp.status_code == 201, resp.text
    listed = [c["case_id"] for c in client.get("/api/cases", headers=world.auth("epidemiologist")).json()]
    assert {"BATCH-2", "DEMO-F0-1"} <= set(listed)
    until = world.demo_trace["rules"]["until"]
    batch = run_trace(client, world, "epidemiologist", ["DEMO-F0-1", "BATCH-2"], until=until)
    status = client.get(f"/api/traces/{batch}", headers=world.auth("epidemiologist")).json()
    assert status == {"trace_id": batch, "status": "done", "hops_done": 2, "depth": 2, "error": None}
    result = read_result(client, world, "epidemiologist", batch)
    assert [c["case_id"] for c in result["cases"]] == ["DEMO-F0-1", "BATCH-2"]
    single = run_trace(client, world, "epidemiologist", ["BATCH-2"], until=until)
    alone = read_result(client, world, "epidemiologist", single)["cases"][0]
    assert _shape(result["cases"][1]["contacts"]) == _shape(alone["contacts"])
    cohort = result["cohort"]
    assert len({c["person_id"] for c in cohort}) == len(cohort)
    both = {c["person_id"] for c in result["cases"][0]["contacts"]} & {c["person_id"] for c in alone["contacts"]}
    assert both and all(set(c["cases"]) == {"DEMO-F0-1", "BATCH-2"} for c in cohort if c["person_id"] in both)
    listed = client.get("/api/traces", headers=world.auth("admin")).json()
    assert batch in {t["trace_id"] for t in listed}


def test_call_lists_and_posters_download(client: TestClient, world: World) -> None:
    trace_id = run_trace(client, world, "epidemiologist", ["DEMO-F0-1"], until=world.demo_trace["rules"]["until"])
    exposures = sum(len(c["exposures"]) for c in world.demo_trace["contacts"])
    epi = world.auth("epidemiologist")
    csv_resp = client.get(f"/api/traces/{trace_id}/call-list", params={"purpose": "calls"}, headers=epi)
    assert csv_resp.headers["content-type"].startswith("text/csv")
    lines = csv_resp.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("Mã ca,Ca bệnh (F0),Mức,Người tiếp xúc,Số điện thoại") and len(lines) == exposures + 1
    xlsx = client.get(f"/api/traces/{trace_id}/call-list", params={"purpose": "calls", "format": "xlsx",
                                                                   "lang": "en"}, headers=epi)  # fmt: skip
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:5] == ("case_id", "case", "hop", "person_id", "phone") and len(rows) == exposures + 1
    assert {r[3] for r in rows[1:]} == {c["person_id"] for c in world.demo_trace["contacts"]}

    owner = world.auth("venue_owner")
    pdf = client.get(f"/api/venues/{world.venue_id}/poster.pdf", headers=owner)
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF-")
    assert pdf.content.count(b"/Type /Page\n") + pdf.content.count(b"/Type /Page>") + pdf.content.count(
        b"/Type /Page ") >= 1  # fmt: skip
    assert b"DejaVu" in pdf.content  # the Unicode font that carries the Vietnamese text is embedded
    png = client.get(f"/api/venues/{world.venue_id}/qr.png", headers=owner)
    assert png.content.startswith(b"\x89PNG")
    svg = client.get(f"/api/venues/{world.venue_id}/qr.svg", headers=owner)
    assert svg.content.lstrip().startswith(b"<?xml") and b"<svg" in svg.content


def test_budgets_refuse_with_a_sentence_and_a_case_reads_alone(client: TestClient, world: World, service,
                                                               monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Issue 10, item 2: too many cases, a result too large for one answer, an XLSX past its limit: 413s
    that say what to do; one case of a large run still reads, and equals the case traced alone."""
    import dataclasses

    contacts = world.demo_trace["contacts"]
    f1 = next(c for c in contacts if c["hop"] == 1)
    epi = world.auth("epidemiologist")
    resp = client.post("/api/cases", headers=epi, json={
        "case_id": "BUDGET-2", "person_id": f1["person_id"], "infectious_from": world.demo_trace["window"]["from"],
        "infectious_to": world.demo_trace["window"]["to"]})  # fmt: skip
    assert resp.status_code == 201, resp.text
    until = world.demo_trace["rules"]["until"]
    exposures = sum(len(c["exposures"]) for c in contacts)
    monkeypatch.setattr(service, "settings", dataclasses.replace(
        service.settings, trace_max_cases=2, trace_result_max_rows=exposures, xlsx_max_rows=exposures))  # fmt: skip
    refused = client.post("/api/traces", headers=epi, json={"case_ids": ["DEMO-F0-1", "BUDGET-2", "nope"],
                                                            "purpose": "testing"})  # fmt: skip
    assert refused.status_code == 413 and "QRTRACE_TRACE_MAX_CASES" in refused.json()["error"]
    both = run_trace(client, world, "epidemiologist", ["DEMO-F0-1", "BUDGET-2"], until=until)
    whole = client.get(f"/api/traces/{both}/result", params={"purpose": "reading"}, headers=epi)
    assert whole.status_code == 413 and "case_id" in whole.json()["error"], whole.text
    one = client.get(f"/api/traces/{both}/result", params={"purpose": "reading", "case_id": "DEMO-F0-1"}, headers=epi)
    assert one.status_code == 200, one.text
    assert _shape(one.json()["cases"][0]["contacts"]) == _shape(contacts)
    missing = client.get(f"/api/traces/{both}/result", params={"purpose": "reading", "case_id": "X"}, headers=epi)
    assert missing.status_code == 404
    xlsx = client.get(f"/api/traces/{both}/call-list", params={"purpose": "calls", "format": "xlsx"}, headers=epi)
    assert xlsx.status_code == 413 and "CSV" in xlsx.json()["error"]
    csv_resp = client.get(f"/api/traces/{both}/call-list", params={"purpose": "calls", "lang": "en"}, headers=epi)
    lines = csv_resp.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("case_id,case,hop") and len(lines) > exposures + 1  # both cases, streamed
    assert [line.split(",")[0] for line in lines[1:]] == sorted(line.split(",")[0] for line in lines[1:])


def test_a_trace_runs_under_a_named_rule_and_keeps_its_tiers(client: TestClient, world: World) -> None:
    """The API takes a shipped rule set by name and the sources option; the result names the rule and
    tiers every contact and exposure (close first in the call list); an unknown rule is a 400, and a path
    is never read as a rule file."""
    rules = world.demo_trace["rules"]
    names = [r["name"] for r in client.get("/api/rules", headers=world.auth("epidemiologist")).json()]
    assert {"qrtrace-2026", "pc-covid-2021"} <= set(names)
    trace_id = run_trace(client, world, "epidemiologist", ["DEMO-F0-1"], until=rules["until"], depth=2,
                         grace_minutes=rules["grace_minutes"], rule="pc-covid-2021", sources="close")  # fmt: skip
    case = read_result(client, world, "epidemiologist", trace_id)["cases"][0]
    assert case["rule"] == {"name": "pc-covid-2021", "version": 1} and case["rules"]["sources"] == "close"
    assert sum(case["tiers"].values()) == len(case["contacts"])
    close_f1 = {c["person_id"] for c in case["contacts"] if c["hop"] == 1 and c["risk"] == "close"}
    for c in case["contacts"]:
        assert c["risk"] == ("close" if any(e["risk"] == "close" for e in c["exposures"]) else "casual")
        if c["hop"] == 2:
            assert {e["source_person_id"] for e in c["exposures"]} <= close_f1
    csv_text = client.get(f"/api/traces/{trace_id}/call-list", params={"purpose": "calls", "lang": "en"},
                          headers=world.auth("epidemiologist")).text  # fmt: skip
    lines = csv_text.lstrip("\ufeff").splitlines()
    assert lines[0].endswith("risk,exposure_risk")
    hop_and_tier = [(int(r.split(",")[2]), r.split(",")[-2]) for r in lines[1:]]
    assert hop_and_tier == sorted(hop_and_tier, key=lambda h: (h[0], h[1] == "casual"))
    for bad in ("no-such-rule", "../../etc/passwd"):
        resp = client.post("/api/traces", headers=world.auth("epidemiologist"),
                           json={"case_ids": ["DEMO-F0-1"], "purpose": "testing", "rule": bad})  # fmt: skip
        assert resp.status_code in (400, 422) and "error" in resp.json()
