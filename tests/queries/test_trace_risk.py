"""Risk tiers: the set-based trace labels every exposure and contact exactly as the brute-force oracle does
(DESIGN.md's rule: overlap and zone, over-capacity windows, thresholds per category; the pc-covid-2021
preset; close contacts only as F(k+1) sources), and tiers never move anyone between hops."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qrtrace.errors import InputError
from qrtrace.queries.risk import RiskContext, RiskRule, load_rule, shipped_rules
from qrtrace.queries.trace import CaseQuery, InMemoryVisits, TraceRules, Visit, trace_case
from qrtrace.stream_processors.batch import US_PER_MINUTE
from tests.oracles import oracle_tier, oracle_trace, trace_shape

M = US_PER_MINUTE
WINDOW = 15 * M
CATEGORY = {"A": "market", "B": "hospital", "C": "karaoke"}
ZONES = {"A": [""], "B": ["x", "y"], "C": ["", "x"]}  # A has no zones; C's visits may be venue-wide
PEOPLE = [f"p{i}" for i in range(8)]

RULES = [
    load_rule("qrtrace-2026"),
    load_rule("pc-covid-2021"),
    RiskRule("strict", 3, close_overlap_minutes=40, category_close_overlap_minutes=(("hospital", 1.0),),
             same_zone=False, over_capacity=False),
]


@st.composite
def worlds(draw):  # type: ignore[no-untyped-def]
    visits = []
    for person, venue, minute, stay in draw(st.lists(
        # on a 5-minute grid, so that overlaps of exactly a threshold (5, 10, 15 minutes) come up
        st.tuples(st.sampled_from(PEOPLE), st.sampled_from(sorted(CATEGORY)), st.integers(0, 120).map(lambda m: 5 * m),
                  st.integers(0, 30).map(lambda m: 5 * m)), min_size=4, max_size=30)):  # fmt: skip
        zone = draw(st.sampled_from(ZONES[venue]))
        visits.append(Visit(person, venue, minute * M, (minute + stay) * M, zone))
    over = draw(st.sets(st.tuples(st.sampled_from(sorted(CATEGORY)), st.integers(0, 45)), min_size=1, max_size=12))
    case = draw(st.sampled_from(sorted({v.person for v in visits})))  # a case who went somewhere
    frm = draw(st.integers(0, 300)) * M
    rule = draw(st.sampled_from(RULES))
    rules = TraceRules(
        depth=draw(st.integers(1, 3)),
        grace_us=draw(st.sampled_from([0, 30])) * M,
        min_overlap_us=draw(st.sampled_from([0, 10])) * M,
        until_us=draw(st.sampled_from([700, 10_000])) * M,
        risk=rule,
        sources=draw(st.sampled_from(["all", "close"])),
    )
    return visits, over, CaseQuery("c", case, frm, frm + draw(st.integers(60, 600)) * M), rules


def context(rule: RiskRule, over: set) -> RiskContext:  # type: ignore[type-arg]
    venues = sorted(CATEGORY)
    over_v = np.array([v for v, _ in sorted(over)], dtype=object)
    over_w = np.array([w * WINDOW for _, w in sorted(over)], dtype=np.int64)
    return RiskContext.of(rule, np.array(venues, dtype=object), [CATEGORY[v] for v in venues], over_v, over_w,
                          WINDOW)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(worlds())
def test_tiers_equal_the_oracle(world) -> None:  # type: ignore[no-untyped-def]
    visits, over, case, rules = world
    got = trace_shape(trace_case(InMemoryVisits(visits), case, rules, context(rules.risk, over)), tiers=True)
    tier = oracle_tier(rules.risk, CATEGORY, over, WINDOW)
    want = oracle_trace(visits, case.person, case.from_us, case.to_us, rules.depth, rules.grace_us,
                        rules.min_overlap_us, rules.until_us, tier, rules.sources == "close")  # fmt: skip
    assert got == want


@settings(max_examples=200, deadline=None)
@given(worlds())
def test_tiers_never_move_anyone_between_hops(world) -> None:  # type: ignore[no-untyped-def]
    visits, over, case, rules = world
    rules = TraceRules(rules.depth, rules.grace_us, rules.min_overlap_us, rules.until_us, rules.risk, "all")
    plain = TraceRules(rules.depth, rules.grace_us, rules.min_overlap_us, rules.until_us)
    tiered = trace_case(InMemoryVisits(visits), case, rules, context(rules.risk, over))
    untiered = trace_case(InMemoryVisits(visits), case, plain)
    assert trace_shape(tiered) == trace_shape(untiered)
    assert all(c.risk in ("close", "casual") for c in tiered.contacts)
    assert all(c.risk == "" for c in untiered.contacts)
    # close sources only: a subset of the contacts, F1 unchanged
    narrow_rules = TraceRules(rules.depth, rules.grace_us, rules.min_overlap_us, rules.until_us, rules.risk, "close")
    narrow = trace_case(InMemoryVisits(visits), case, narrow_rules, context(rules.risk, over))
    assert {c.person for c in narrow.contacts} <= {c.person for c in tiered.contacts}
    assert {c.person for c in narrow.contacts if c.hop == 1} == {c.person for c in tiered.contacts if c.hop == 1}


def test_zones_and_duration_decide_the_tier() -> None:
    rule = load_rule("qrtrace-2026")
    visits = [
        Visit("f0", "B", 0, 60 * M, "x"),
        Visit("same", "B", 0, 60 * M, "x"),  # an hour in the case's zone: close
        Visit("other", "B", 0, 60 * M, "y"),  # an hour in another zone of the venue: casual
        Visit("short", "A", 100 * M, 105 * M),  # 5 + 30 min grace... only 5 min together: see below
        Visit("f0", "A", 95 * M, 100 * M),
    ]
    ctx = context(rule, set())
    result = trace_case(InMemoryVisits(visits), CaseQuery("c", "f0", 0, 200 * M),
                        TraceRules(depth=1, grace_us=0, risk=rule), ctx)  # fmt: skip
    tiers = {c.person: c.risk for c in result.contacts}
    assert tiers == {"same": "close", "other": "casual"}  # "short" arrived as f0 left (no grace): no exposure
    over = context(rule, {("B", 1)})  # B over capacity 15:00-15:30 min: any overlap then is close
    result = trace_case(InMemoryVisits(visits), CaseQuery("c", "f0", 0, 200 * M),
                        TraceRules(depth=1, grace_us=0, risk=rule), over)  # fmt: skip
    assert {c.person: c.risk for c in result.contacts} == {"same": "close", "other": "close"}
    # exactly the threshold is close (15 minutes at a market), a minute less is not
    visits = [Visit("f0", "A", 0, 15 * M), Visit("edge", "A", 0, 40 * M), Visit("less", "A", 1 * M, 40 * M)]
    result = trace_case(InMemoryVisits(visits), CaseQuery("c", "f0", 0, 200 * M),
                        TraceRules(depth=1, grace_us=0, risk=rule), ctx)  # fmt: skip
    assert {c.person: c.risk for c in result.contacts} == {"edge": "close", "less": "casual"}


def test_pc_covid_preset_is_a_scan_within_an_hour() -> None:
    rule = load_rule("pc-covid-2021")
    visits = [Visit("f0", "A", 0, 300 * M), Visit("early", "A", 50 * M, 60 * M), Visit("late", "A", 70 * M, 200 * M)]
    result = trace_case(InMemoryVisits(visits), CaseQuery("c", "f0", 0, 300 * M), TraceRules(depth=1, risk=rule))
    assert {c.person: c.risk for c in result.contacts} == {"early": "close", "late": "casual"}
    assert rule.label == {"name": "pc-covid-2021", "version": 1}


def test_rule_sets_load_by_name_or_file_and_bad_ones_are_one_sentence(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert {"qrtrace-2026", "pc-covid-2021"} <= set(shipped_rules())
    assert load_rule(None).name == "qrtrace-2026"
    own = tmp_path / "province.json"
    own.write_text(json.dumps({"name": "tuyen-quang", "version": 2, "close_overlap_minutes": 10}))
    assert load_rule(str(own)).close_overlap_us("market") == 10 * M
    for doc, words in [({"version": 1}, "name"), ({"name": "x", "version": 0}, "version"),
                       ({"name": "x", "version": 1, "kind": "vibes"}, "kind"),
                       ({"name": "x", "version": 1, "close_overlap_minutes": -1}, "minutes"),
                       ({"name": "x", "version": 1, "colour": 1}, "unknown")]:  # fmt: skip
        own.write_text(json.dumps(doc))
        with pytest.raises(InputError, match=words):
            load_rule(str(own))
    with pytest.raises(InputError, match="no rule set"):
        load_rule("who-knows")


def test_a_context_of_another_rule_is_refused() -> None:
    visits = [Visit("f0", "A", 0, 60 * M), Visit("x", "A", 0, 60 * M)]
    other = RiskContext.plain(load_rule("pc-covid-2021"))
    with pytest.raises(ValueError, match="pc-covid-2021"):
        trace_case(InMemoryVisits(visits), CaseQuery("c", "f0", 0, 60 * M), TraceRules(risk=load_rule(None)), other)
