"""The trace index (pure core) against the list reader and the brute-force oracle.

A scenario is a store's history: visits built into day segments, then feed rows (new visits, new versions
of stored ones, withdrawn ones) applied in one to three deliveries, with merges in between or not. Every
trace through the index must equal the trace over the final visits, exposures and all.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from qrtrace.queries.risk import RiskContext, load_rule
from qrtrace.queries.trace import CaseQuery, InMemoryVisits, TraceRules, Visit, trace_batch, trace_case
from qrtrace.queries.trace_index import (
    Dictionary,
    IndexHopReader,
    TraceIndex,
    as_bytes,
    index_of_visits,
)
from qrtrace.stream_processors.batch import US_PER_MINUTE
from tests.oracles import oracle_tier, oracle_trace, trace_shape

M = US_PER_MINUTE
DAY_MIN = 24 * 60
PEOPLE = [f"p{i}" for i in range(6)]
VENUES = ["A", "B", "C", "chợ-Đông"]  # a non-ASCII id: names are kept as UTF-8 bytes
NO_CAP = 10 * DAY_MIN * M

visit_drafts = st.tuples(
    st.sampled_from(PEOPLE),
    st.sampled_from(VENUES),
    # start minute: over three days (several segments), half of them in one busy afternoon (co-presence)
    st.one_of(st.integers(0, 3 * DAY_MIN), st.integers(DAY_MIN + 780, DAY_MIN + 1080)).map(lambda m: m // 5 * 5),
    st.integers(1, 300),  # length in minutes (some cross midnight and bucket edges)
    st.sampled_from(["", "", "x", "khu-chợ"]),  # zone: most visits at venues without zones
)
CATEGORY = {"A": "market", "B": "hospital", "C": "karaoke", "chợ-Đông": "market"}
WINDOW = 15 * M
RULES = [load_rule("qrtrace-2026"), load_rule("qrtrace-2026"), load_rule("pc-covid-2021"), None]


def feed(rows: list[tuple[str, str, int, int, int, int, int, str]]) -> dict[str, np.ndarray]:
    """Feed rows (venue, person, start, end, opened, version, withdrawn[, zone]) as columns."""
    rows = [(*r, "") if len(r) == 7 else r for r in rows]  # type: ignore[assignment]
    cols = list(zip(*rows, strict=True)) if rows else [[]] * 8
    return {
        "venue_id": np.asarray(cols[0], dtype=object),
        "person": np.asarray(cols[1], dtype=object),
        "start_us": np.asarray(cols[2], dtype=np.int64),
        "end_us": np.asarray(cols[3], dtype=np.int64),
        "opened": np.asarray(cols[4], dtype=np.uint64),
        "version": np.asarray(cols[5], dtype=np.uint64),
        "withdrawn": np.asarray(cols[6], dtype=np.uint8),
        "zone": np.asarray(cols[7], dtype=object),
    }


@st.composite
def histories(draw):  # type: ignore[no-untyped-def]
    stored = draw(st.lists(visit_drafts, min_size=1, max_size=40))
    # visit id -> (person, venue, start, end, version, withdrawn, zone); the id is the opened-by hash. A
    # visit's zone is its opening scan's: revisions keep it.
    visits = {i: (p, v, s * M, (s + n) * M, 1, 0, z) for i, (p, v, s, n, z) in enumerate(stored)}
    rows = []
    for _ in range(draw(st.integers(0, 20))):
        kind = draw(st.sampled_from(["new", "revise", "withdraw", "replay"]))
        if kind == "new" or not visits:
            p, v, s, n, z = draw(visit_drafts)
            i = len(visits) + 1000
            visits[i] = (p, v, s * M, (s + n) * M, 1, 0, z)
        else:
            i = draw(st.sampled_from(sorted(visits)))
            p, v, s, e, version, withdrawn, z = visits[i]
            if kind == "revise":
                visits[i] = (p, v, s, s + draw(st.integers(1, 400)) * M, version + 1, 0, z)
            elif kind == "withdraw":
                visits[i] = (p, v, s, e, version + 1, 1, z)
        p, v, s, e, version, withdrawn, z = visits[i]
        rows.append((v, p, s, e, i, version, withdrawn, z))
    cuts = sorted(draw(st.lists(st.integers(0, len(rows)), max_size=2)))
    deliveries = [rows[a:b] for a, b in zip([0, *cuts], [*cuts, len(rows)], strict=True)]
    merges = [draw(st.booleans()) for _ in deliveries]
    final = [Visit(p, v, s, e, z) for p, v, s, e, _, w, z in visits.values() if not w]
    latest = [(v, p, s, e, i, version, w, z) for i, (p, v, s, e, version, w, z) in visits.items()]
    # the case is someone with a stored visit, infectious around it (else most scenarios trace nobody)
    case, _, at, _, _ = draw(st.sampled_from(stored))
    frm = max(0, at - draw(st.integers(0, 240))) * M
    to = frm + draw(st.integers(0, DAY_MIN)) * M
    risk = draw(st.sampled_from(RULES))
    rules = TraceRules(
        depth=draw(st.integers(1, 3)),
        grace_us=draw(st.sampled_from([0, 30])) * M,
        min_overlap_us=draw(st.sampled_from([0, 10])) * M,
        until_us=draw(st.sampled_from([2 * DAY_MIN, 10 * DAY_MIN])) * M,
        risk=risk,
        sources=draw(st.sampled_from(["all", "close"])) if risk is not None else "all",  # close needs a rule
    )
    over = draw(st.sets(st.tuples(st.sampled_from(VENUES), st.integers(0, 3 * 96)), max_size=20))
    return stored, (deliveries, merges, latest), final, CaseQuery("c", case, frm, to), rules, over


def index_after(stored, deliveries, merges, latest) -> TraceIndex:  # type: ignore[no-untyped-def]
    """What the store adapter does: build, then apply each delivery, and for the rows that replaced segment
    rows apply the store's latest rows of their (venue, person, start) (`latest`: the store's state)."""
    p, v, s, n, z = (np.asarray(c, dtype=object if k in (0, 1, 4) else np.int64)
                     for k, c in enumerate(zip(*stored, strict=True)))  # fmt: skip
    index = index_of_visits(v, p, s * M, (s + n) * M, z)
    for rows, merge in zip(deliveries, merges, strict=True):
        index, replaced = index.applied(feed(rows))
        keys = {(rows[i][0], rows[i][1], rows[i][2]) for i in replaced.tolist()}
        index, _ = index.applied(feed([r for r in latest if (r[0], r[1], r[2]) in keys]))
        if merge:
            index = index.merged()
    return index


def risk_contexts(rule, index: TraceIndex, over):  # type: ignore[no-untyped-def]
    """The rule's context keyed both ways: by the index's venue codes (dense) and by venue id."""
    if rule is None:
        return None, None
    ids = np.asarray(VENUES, dtype=object)
    over_v = np.asarray([v for v, _ in sorted(over)], dtype=object)
    over_w = np.asarray([w * WINDOW for _, w in sorted(over)], dtype=np.int64)
    by_name = RiskContext.of(rule, ids, [CATEGORY[v] for v in VENUES], over_v, over_w, WINDOW)
    n = len(index.venues)
    categories = np.full(n, "", dtype=object)
    codes = index.venues.codes(as_bytes(ids))
    categories[codes[codes >= 0]] = [CATEGORY[v] for v, c in zip(VENUES, codes, strict=True) if c >= 0]
    over_codes = index.venues.codes(as_bytes(over_v)) if len(over_v) else np.empty(0, np.int64)
    wide = int(index.zones.codes(as_bytes(np.asarray([""], dtype=object)))[0])
    by_code = RiskContext.of(rule, np.arange(n), categories, over_codes[over_codes >= 0], over_w[over_codes >= 0],
                             WINDOW, dense=True, wide_zone=wide)  # fmt: skip
    return by_code, by_name


@settings(max_examples=300, deadline=None)
@given(histories())
def test_index_reader_equals_list_reader_and_oracle(history) -> None:  # type: ignore[no-untyped-def]
    stored, (deliveries, merges, latest), final, case, rules, over = history
    index = index_after(stored, deliveries, merges, latest)
    by_code, by_name = risk_contexts(rules.risk, index, over)
    tiers = rules.risk is not None
    got = trace_shape(trace_case(IndexHopReader(index, NO_CAP), case, rules, by_code), tiers)
    assert got == trace_shape(trace_case(InMemoryVisits(final), case, rules, by_name), tiers)
    tier = oracle_tier(rules.risk, CATEGORY, over, WINDOW) if tiers else None
    want = oracle_trace(final, case.person, case.from_us, case.to_us, rules.depth, rules.grace_us,
                        rules.min_overlap_us, rules.until_us, tier, rules.sources == "close" and tiers)  # fmt: skip
    assert got == want


def test_a_batch_through_the_index_is_named_and_equals_per_case_traces() -> None:
    visits = [Visit("f0", "A", 0, 60 * M), Visit("x", "A", 30 * M, 90 * M), Visit("y", "B", 100 * M, 200 * M),
              Visit("x", "B", 120 * M, 180 * M), Visit("z", "chợ-Đông", 0, 50 * M),
              Visit("f0", "chợ-Đông", 10 * M, 20 * M)]  # fmt: skip
    cols = [np.asarray([getattr(v, k) for v in visits], dtype=object) for k in ("venue", "person")]
    index = index_of_visits(cols[0], cols[1], [v.start for v in visits], [v.end for v in visits])
    reader = IndexHopReader(index, NO_CAP)
    cases = [CaseQuery("a", "f0", 0, 60 * M), CaseQuery("b", "x", 0, 300 * M), CaseQuery("c", "nobody", 0, 9)]
    rules = TraceRules(depth=2)
    batch = trace_batch(reader, cases, rules)
    assert batch.contacts["person"].dtype != object and batch.namer is not None  # codes until named
    named = batch.named()
    assert set(named.exposures["venue"]) <= {"A", "B", "chợ-Đông"}
    by_list = [trace_shape(trace_case(InMemoryVisits(visits), c, rules)) for c in cases]
    assert [trace_shape(r) for r in batch.results()] == by_list
    assert by_list[2] == {}


def test_the_cap_applies_as_in_the_store_reader() -> None:
    """A stored visit longer than the longest allowed is read as ending at start + the cap."""
    index = index_of_visits(np.asarray(["A", "A"], object), np.asarray(["f0", "late"], object), [0, 5 * 60 * M],
                            [10 * 60 * M, 6 * 60 * M])  # fmt: skip
    case, rules = CaseQuery("c", "f0", 0, 10 * M), TraceRules(depth=1, grace_us=0)
    assert trace_case(IndexHopReader(index, 4 * 60 * M), case, rules).contacts == []
    assert [c.person for c in trace_case(IndexHopReader(index, 24 * 60 * M), case, rules).contacts] == ["late"]


def test_rows_replacing_segment_rows_are_reported_for_the_store_to_resolve() -> None:
    """Two stored visits of one person at one venue and instant: a feed row for one of them cannot tell
    which segment row it replaces, so `applied` names it and the adapter re-reads both from the store."""
    index = index_of_visits(np.asarray(["A", "A"], object), np.asarray(["p", "p"], object), [0, 0], [10, 20])
    index, replaced = index.applied(feed([("A", "p", 0, 30, 7, 2, 0), ("B", "p", 0, 30, 7, 2, 0)]))
    assert replaced.tolist() == [0] and len(index) == 2  # both segment rows out, the new one in


def test_dictionary_codes_never_change_as_names_are_added() -> None:
    d = Dictionary.of(np.asarray(["b", "d"], object))
    grown, codes = d.adding(as_bytes(np.asarray(["d", "a", "e", "a"], object)))
    assert codes.tolist() == [1, 2, 3, 2]
    assert grown.codes(as_bytes(np.asarray(["b", "zz", "e"], object))).tolist() == [0, -1, 3]
    assert grown.names(np.asarray([3, 0, 2])).tolist() == ["e", "b", "a"]


def test_retention_drops_whole_days() -> None:
    day = 24 * 60 * M
    index = index_of_visits(np.asarray(["A", "A"], object), np.asarray(["p", "q"], object), [0, day], [10, day + 10])
    index, _ = index.applied(feed([("A", "r", 10, 20, 1, 1, 0)]))
    assert len(index) == 3 and len(index.without_days([0])) == 1


def test_a_withdrawn_visit_stays_withdrawn_after_a_merge_when_an_older_row_comes_again() -> None:
    """A replayed batch or the feed's margin read again can bring an older row of a visit after its withdrawal
    was merged: the withdrawn marker outlives the merge, so the visit does not come back."""
    index = index_of_visits(np.asarray(["A"], object), np.asarray(["f0"], object), [0], [60 * M])
    x_v1 = ("A", "x", 10 * M, 50 * M, 7, 1, 0)
    index, _ = index.applied(feed([x_v1]))
    index, _ = index.applied(feed([("A", "x", 10 * M, 50 * M, 7, 2, 1)]))  # withdrawn
    index = index.merged()
    index, _ = index.applied(feed([x_v1]))  # the older row again
    case, rules = CaseQuery("c", "f0", 0, 60 * M), TraceRules(depth=1)
    assert trace_case(IndexHopReader(index, NO_CAP), case, rules).contacts == []
    assert len(index) == 1 and index.overlay.live == 0
