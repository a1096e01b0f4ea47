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
    coverage = json.loads((store / "exports" / "coverage.json").read_text())
    assert len(coverage["communes"]) == 31 and sum(c["scans"] for c in coverage["communes"]) > 0
    chart = tmp_path / "coverage.png"
    cli("report", "coverage", "--chart", str(chart), store=store)
    assert chart.read_bytes().startswith(b"\x89PNG") and chart.stat().st_size > 10_000
    assert json.loads((store / "demo-tokens.json").read_text()).keys() == {
        "scanner", "venue_owner", "commune_officer", "district_officer", "epidemiologist", "admin"}
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
