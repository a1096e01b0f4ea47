"""Trace correctness: the set-based expansion agrees with the brute-force oracle on random scenarios.

Scenarios are generated as check-in events (with repeat scans and missing check-outs) and paired by
the real pairing core, so the visit shapes are the ones the pipeline produces.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from qrtrace.queries.trace import CaseQuery, InMemoryVisits, TraceRules, Visit, trace_case
from qrtrace.stream_processors.batch import US_PER_MINUTE
from tests.oracles import Ev, oracle_trace, oracle_visits, trace_shape

M = US_PER_MINUTE
DWELL = {"A": 30 * M, "B": 60 * M, "C": 120 * M}
PEOPLE = [f"p{i}" for i in range(8)]


@st.composite
def scenarios(draw):  # type: ignore[no-untyped-def]
    raw = draw(
        st.lists(
            st.tuples(
                st.sampled_from(PEOPLE),
                st.sampled_from(sorted(DWELL)),
                st.integers(0, 600),
                st.one_of(st.none(), st.integers(0, 200)),
                st.booleans(),
            ),
            min_size=1,
            max_size=30,
        )
    )
    events = []
    for i, (person, venue, minute, stay, repeat) in enumerate(raw):
        events.append(Ev(f"i{i}", person, venue, True, minute * M))
        if repeat:
            events.append(Ev(f"r{i}", person, venue, True, (minute + 3) * M))  # double scan
        if stay is not None:  # None: the person never scans out
            events.append(Ev(f"o{i}", person, venue, False, (minute + stay) * M))
    visits = [Visit(p, v, s, e) for p, v, s, e in sorted(oracle_visits(sorted(events, key=lambda e: e.t), DWELL))]
    case = draw(st.sampled_from(PEOPLE))
    frm = draw(st.integers(0, 400)) * M
    to = frm + draw(st.integers(0, 400)) * M
    rules = TraceRules(
        depth=draw(st.integers(1, 3)),
        grace_us=draw(st.sampled_from([0, 15, 30])) * M,
        min_overlap_us=draw(st.sampled_from([0, 5, 20])) * M,
        until_us=draw(st.sampled_from([300, 700, 10_000])) * M,
    )
    return visits, CaseQuery("c", case, frm, to), rules


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_trace_equals_brute_force_oracle(scenario) -> None:  # type: ignore[no-untyped-def]
    visits, case, rules = scenario
    got = trace_shape(trace_case(InMemoryVisits(visits), case, rules))
    want = oracle_trace(
        visits,
        case.person,
        case.from_us,
        case.to_us,
        rules.depth,
        rules.grace_us,
        rules.min_overlap_us,
        rules.until_us,
    )
    assert got == want


def test_each_person_once_at_lowest_hop_and_case_never_a_contact() -> None:
    visits = [
        Visit("f0", "A", 0, 10 * M),
        Visit("x", "A", 5 * M, 20 * M),  # F1 via f0
        Visit("x", "B", 30 * M, 40 * M),
        Visit("y", "B", 35 * M, 50 * M),  # F2 via x
        Visit("y", "A", 0, 8 * M),  # also with f0 at A: F1, not F2
        Visit("f0", "B", 45 * M, 46 * M),  # f0 at B again, after x left: never a contact of anyone
    ]
    result = trace_case(InMemoryVisits(visits), CaseQuery("c", "f0", 0, 60 * M), TraceRules(depth=3, grace_us=0))
    hops = {c.person: c.hop for c in result.contacts}
    assert hops == {"x": 1, "y": 1}


def test_grace_counts_arrival_soon_after_the_case_left() -> None:
    visits = [Visit("f0", "A", 0, 10 * M), Visit("late", "A", 25 * M, 30 * M)]
    case = CaseQuery("c", "f0", 0, 10 * M)
    assert [c.person for c in trace_case(InMemoryVisits(visits), case, TraceRules(grace_us=30 * M)).contacts] == [
        "late"
    ]
    assert trace_case(InMemoryVisits(visits), case, TraceRules(grace_us=10 * M)).contacts == []


@settings(max_examples=150, deadline=None)
@given(st.lists(scenarios(), min_size=1, max_size=4))
def test_batch_trace_equals_single_traces(scenarios_) -> None:  # type: ignore[no-untyped-def]
    from qrtrace.queries.trace import trace_cases

    visits = [v for s in scenarios_ for v in s[0]]  # one shared world
    rules = scenarios_[0][2]
    cases = [CaseQuery(f"c{i}", s[1].person, s[1].from_us, s[1].to_us) for i, s in enumerate(scenarios_)]
    reader = InMemoryVisits(visits)
    batch = trace_cases(reader, cases, rules)
    for case, result in zip(cases, batch, strict=True):
        assert trace_shape(result) == trace_shape(trace_case(reader, case, rules))
