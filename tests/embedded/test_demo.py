"""`qrtrace demo` runs end to end in a fresh temporary directory and prints a cohort and coverage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.embedded


def test_demo_runs_in_a_fresh_directory(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "fresh" / ".qrtrace"
    proc = cli("demo", "--population", "3000", "--days", "2", store=store, env={"QRTRACE_LANG": "en"})
    out = proc.stdout
    assert "Contacts of case" in out and "F1:" in out
    assert "QR deployment by commune" in out and "Sơn Dương (02536)" in out
    doc = json.loads((store / "exports" / "trace-DEMO-F0-1.json").read_text())
    hops = {c["hop"] for c in doc["contacts"]}
    assert {1, 2} <= hops
    assert all(c["exposures"] for c in doc["contacts"])
    assert (store / "exports" / "trace-DEMO-F0-1.csv").read_text().startswith("case,person_id,hop")
    assert list((store / "exports").glob("poster-*.png"))
    # tiers: counted in the table header, and F2 with close contacts only as sources
    tiers = doc["tiers"]
    assert doc["rule"] == {"name": "qrtrace-2026", "version": 1} and sum(tiers.values()) == len(doc["contacts"])
    assert f"Close: {tiers['close']}  Casual: {tiers['casual']}" in out
    f2 = sum(c["hop"] == 2 for c in doc["contacts"])
    assert f"(all contacts as sources: {f2:,})" in out and "Close contacts only as F2 sources: F2 = " in out
    # the case's exposure sites, published: venues and times, never a person
    sites = json.loads((store / "exports" / "exposure-sites.json").read_text())
    assert sites and all(s["venue_name"] and s["from"] < s["to"] for s in sites)
    people = {doc["case"], *(c["person_id"] for c in doc["contacts"])}
    assert not any(p in json.dumps(sites) for p in people)
    # the close contacts warned once each through the file gateway
    lines = (store / "exports" / "notifications-close.jsonl").read_text().splitlines()
    messages = [json.loads(line) for line in lines]
    assert len(messages) == len({m["message_id"] for m in messages}) and all(m["tier"] == "close" for m in messages)
    assert 0 < len(messages) <= tiers["close"] and f"Warned {len(messages):,} close contacts" in out
    coverage = json.loads((store / "exports" / "coverage.json").read_text())
    assert len(coverage["communes"]) == 31 and sum(c["scans"] for c in coverage["communes"]) > 0
    chart = tmp_path / "coverage.png"
    cli("report", "coverage", "--chart", str(chart), store=store)
    assert chart.read_bytes().startswith(b"\x89PNG") and chart.stat().st_size > 10_000
    assert json.loads((store / "demo-tokens.json").read_text()).keys() == {
        "scanner", "venue_owner", "commune_officer", "district_officer", "epidemiologist", "admin", "health_station"}
    # a second run replaces its own store rather than mixing two simulations
    again = cli("demo", "--population", "3000", "--days", "2", store=store, env={"QRTRACE_LANG": "en"})
    assert again.returncode == 0


def test_demo_refuses_to_replace_a_store_it_did_not_create(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "real"
    store.mkdir()
    (store / "precious.txt").write_text("keep me")
    proc = cli("demo", "--population", "500", "--days", "1", store=store, check=False)
    assert proc.returncode == 1 and "did not create" in proc.stderr
    assert (store / "precious.txt").read_text() == "keep me"
