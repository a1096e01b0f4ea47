"""The worked example of the ingest and trace contract (shared/examples/small-wave) through the real CLI."""

from __future__ import annotations

import json
import shlex
from datetime import datetime

import pytest

from tests.conftest import SMALL_WAVE
from tests.embedded.conftest import REPLAY_2021

pytestmark = pytest.mark.embedded


def instant(s: str) -> float:
    return datetime.fromisoformat(s).timestamp()


def test_small_wave_reports_exactly_the_expected_contacts(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "store"
    cli("venues", "import", str(SMALL_WAVE / "venues.csv"), store=store, env=REPLAY_2021)
    ingest = cli("ingest", str(SMALL_WAVE / "events.jsonl"), "--json", store=store, env=REPLAY_2021)
    counts = json.loads(ingest.stdout[ingest.stdout.index("{") :])
    assert counts["received"] == 150
    assert counts["received"] == counts["accepted"] + counts["deduplicated"] + counts["dead_lettered"]
    expected = json.loads((SMALL_WAVE / "expected.json").read_text())
    args = shlex.split(expected["command"])[1:]
    got = json.loads(cli(*args, store=store, env=REPLAY_2021).stdout)
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
    cli("venues", "import", str(SMALL_WAVE / "venues.csv"), store=store, env=REPLAY_2021)
    first = json.loads(cli("ingest", str(SMALL_WAVE / "events.jsonl"), "--json", store=store, env=REPLAY_2021).stdout)
    second = json.loads(cli("ingest", str(SMALL_WAVE / "events.jsonl"), "--json", store=store, env=REPLAY_2021).stdout)
    assert first["accepted"] > 0
    assert second["accepted"] == 0 and second["deduplicated"] == 150
    expected = json.loads((SMALL_WAVE / "expected.json").read_text())
    got = json.loads(cli(*shlex.split(expected["command"])[1:], store=store, env=REPLAY_2021).stdout)
    assert len(got["contacts"]) == len(expected["contacts"])


def test_batch_trace_writes_each_case_and_one_combined_cohort(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`trace --cases` equals the single traces case by case; the cohort lists each contact once, with all
    the cases that reached them."""
    store = tmp_path / "store"
    cli("venues", "import", str(SMALL_WAVE / "venues.csv"), store=store, env=REPLAY_2021)
    cli("ingest", str(SMALL_WAVE / "events.jsonl"), store=store, env=REPLAY_2021)
    expected = json.loads((SMALL_WAVE / "expected.json").read_text())
    window = ("2021-07-20T00:00:00+07:00", "2021-07-21T00:00:00+07:00")
    people = [expected["case"], expected["contacts"][0]["person_id"]]
    cases = tmp_path / "cases.csv"
    cases.write_text(
        "case_id,person_id,from,to\n" + "".join(f"c{i},{p},{window[0]},{window[1]}\n" for i, p in enumerate(people))
    )
    rules = ("--until", "2021-07-25T00:00:00+07:00", "--depth", "2")
    out = tmp_path / "out"
    cli("trace", "--cases", str(cases), *rules, "--out", str(out), store=store, env=REPLAY_2021)
    singles = {
        f"c{i}": json.loads(
            cli("trace", p, "--from", window[0], "--to", window[1], *rules, "--json", store=store,
                env=REPLAY_2021).stdout
        )
        for i, p in enumerate(people)
    }
    for case_id, single in singles.items():
        written = json.loads((out / f"{case_id}.json").read_text())
        assert [(c["person_id"], c["hop"]) for c in written["contacts"]] == [
            (c["person_id"], c["hop"]) for c in single["contacts"]
        ]
    cohort = json.loads((out / "cohort.json").read_text())["contacts"]
    reached: dict[str, set[str]] = {}
    for case_id, single in singles.items():
        for c in single["contacts"]:
            reached.setdefault(c["person_id"], set()).add(case_id)
    assert sorted(c["person_id"] for c in cohort) == sorted(reached)  # each contact once
    assert {c["person_id"]: set(c["cases"]) for c in cohort} == reached
    assert any(len(cs) > 1 for cs in reached.values())  # the two cases share contacts: the merge is exercised
    assert (out / "cohort.csv").read_text().count("\n") == len(cohort) + 1


def test_every_contact_and_exposure_has_a_tier_by_the_named_rule(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`--json` names the rule set and labels every contact and exposure; a contact is close when one of the
    exposures that placed it is; zone-less venues: an exposure is close by overlap (the category's
    threshold) or over capacity, so a casual one is always shorter than the threshold. `--sources close`
    keeps F1 and expands only from close contacts; `--rule pc-covid-2021` is named in the output."""
    import csv

    from qrtrace.queries.risk import load_rule

    store = tmp_path / "store"
    cli("venues", "import", str(SMALL_WAVE / "venues.csv"), store=store, env=REPLAY_2021)
    cli("ingest", str(SMALL_WAVE / "events.jsonl"), store=store, env=REPLAY_2021)
    expected = json.loads((SMALL_WAVE / "expected.json").read_text())
    args = shlex.split(expected["command"])[1:]
    rule = load_rule("qrtrace-2026")
    category = {row["venue_id"]: row["category"] for row in csv.DictReader((SMALL_WAVE / "venues.csv").open())}
    got = json.loads(cli(*args, store=store, env=REPLAY_2021).stdout)
    assert got["rule"] == {"name": "qrtrace-2026", "version": 1} and got["rules"]["sources"] == "all"
    assert sum(got["tiers"].values()) == len(got["contacts"]) and got["tiers"]["close"] >= 1
    for contact in got["contacts"]:
        tiers = {e["risk"] for e in contact["exposures"]}
        assert tiers <= {"close", "casual"}
        assert contact["risk"] == ("close" if "close" in tiers else "casual")
        for e in contact["exposures"]:
            threshold = rule.close_overlap_us(category[e["venue_id"]]) / 60_000_000
            if e["risk"] == "casual":
                assert e["overlap_minutes"] < threshold, e
    close_f1 = {c["person_id"] for c in got["contacts"] if c["hop"] == 1 and c["risk"] == "close"}
    narrow = json.loads(cli(*args, "--sources", "close", store=store, env=REPLAY_2021).stdout)
    assert narrow["rules"]["sources"] == "close"
    assert {c["person_id"] for c in narrow["contacts"] if c["hop"] == 1} == {
        c["person_id"] for c in got["contacts"] if c["hop"] == 1}
    assert {c["person_id"] for c in narrow["contacts"]} <= {c["person_id"] for c in got["contacts"]}
    for contact in narrow["contacts"]:
        if contact["hop"] == 2:
            assert {e["source_person_id"] for e in contact["exposures"]} <= close_f1
    national = json.loads(cli(*args, "--rule", "pc-covid-2021", store=store, env=REPLAY_2021).stdout)
    assert national["rule"] == {"name": "pc-covid-2021", "version": 1}
    assert [c["person_id"] for c in national["contacts"]] == [c["person_id"] for c in got["contacts"]]
    bad = cli(*args, "--rule", "no-such-rule", store=store, env=REPLAY_2021, check=False)
    assert bad.returncode != 0 and "no rule set 'no-such-rule'" in bad.stderr and "Traceback" not in bad.stderr
