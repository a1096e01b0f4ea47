"""The worked example of the ingest and trace contract (shared/examples/small-wave) through the real CLI."""

from __future__ import annotations

import json
import shlex
from datetime import datetime

import pytest

from tests.conftest import SMALL_WAVE

pytestmark = pytest.mark.embedded


def instant(s: str) -> float:
    return datetime.fromisoformat(s).timestamp()


def test_small_wave_reports_exactly_the_expected_contacts(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "store"
    cli("venues", "import", str(SMALL_WAVE / "venues.csv"), store=store)
    ingest = cli("ingest", str(SMALL_WAVE / "events.jsonl"), "--json", store=store)
    counts = json.loads(ingest.stdout[ingest.stdout.index("{") :])
    assert counts["received"] == 150
    assert counts["received"] == counts["accepted"] + counts["deduplicated"] + counts["dead_lettered"]
    expected = json.loads((SMALL_WAVE / "expected.json").read_text())
    args = shlex.split(expected["command"])[1:]
    got = json.loads(cli(*args, store=store).stdout)
    assert got["case"] == expected["case"]
    want = {(c["person_id"], c["hop"], instant(c["first_exposure"])) for c in expected["contacts"]}
    have = {(c["person_id"], c["hop"], instant(c["first_exposure"])) for c in got["contacts"]}
    assert have == want
    for contact in got["contacts"]:
        assert contact["exposures"], contact
        first = min(instant(e["start"]) for e in contact["exposures"])
        assert first == instant(contact["first_exposure"])
        for e in contact["exposures"]:
            assert e["source_hop"] == contact["hop"] - 1
            assert e["overlap_minutes"] >= 0
            assert e["start"].endswith("+07:00")


def test_ingesting_the_same_file_twice_stores_nothing_twice(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "store"
    cli("venues", "import", str(SMALL_WAVE / "venues.csv"), store=store)
    first = json.loads(cli("ingest", str(SMALL_WAVE / "events.jsonl"), "--json", store=store).stdout)
    second = json.loads(cli("ingest", str(SMALL_WAVE / "events.jsonl"), "--json", store=store).stdout)
    assert first["accepted"] > 0
    assert second["accepted"] == 0 and second["deduplicated"] == 150
    expected = json.loads((SMALL_WAVE / "expected.json").read_text())
    got = json.loads(cli(*shlex.split(expected["command"])[1:], store=store).stdout)
    assert len(got["contacts"]) == len(expected["contacts"])
