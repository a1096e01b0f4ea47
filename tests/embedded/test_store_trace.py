"""The SQL-backed trace (chDB) equals the in-memory reference on random scenarios; retention and QR."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qrtrace.domain.venue_qr import ForgedVenueQrError, decode_venue_qr, encode_venue_qr, venue_signing_key
from qrtrace.domain.venues import Venue
from qrtrace.queries.trace import CaseQuery, TraceRules, Visit, trace_case, trace_cases
from qrtrace.queries.trace_index import IndexHopReader
from qrtrace.queries.visit_reader import DEFAULT_MAX_VISIT_US, StoreHopReader
from qrtrace.sinks.chdb_store import ChdbStore
from qrtrace.sinks.retention import drop_expired_partitions
from qrtrace.sinks.trace_index_files import IndexFiles, build, catch_up, store_id_of
from qrtrace.stream_processors.batch import US_PER_DAY, US_PER_MINUTE
from tests.oracles import oracle_trace, trace_shape

pytestmark = pytest.mark.embedded
M = US_PER_MINUTE
T0 = 1_626_739_200_000_000  # 2021-07-20 00:00 UTC


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    s = ChdbStore(tmp_path_factory.mktemp("trace-store"))
    yield s
    s.close()


def insert_visits(store: ChdbStore, visits: list[Visit]) -> None:
    store.execute("TRUNCATE TABLE qrtrace.visits_by_venue")
    store.execute("TRUNCATE TABLE qrtrace.visits_by_person")
    store.execute("TRUNCATE TABLE qrtrace.visit_feed")
    n = len(visits)
    store.insert(
        "qrtrace.visits_by_venue",
        {
            "venue_id": np.array([v.venue for v in visits], dtype=object),
            "person": np.array([v.person for v in visits], dtype=object),
            "start_us": np.array([v.start for v in visits], dtype=np.int64),
            "end_us": np.array([v.end for v in visits], dtype=np.int64),
            "closed_by": np.zeros(n, np.int8),
            "version": np.ones(n, np.uint8),
            "opened_by": np.array([f"s{i}" for i in range(n)], dtype=object),
            "zone": np.array([v.zone for v in visits], dtype=object),
        },
    )


visit_lists = st.lists(
    st.builds(
        lambda p, v, s, d: Visit(f"p{p}", f"V{v}", T0 + s * M, T0 + (s + d) * M),
        st.integers(0, 7),
        st.integers(0, 2),
        st.integers(0, 600),
        st.integers(0, 240),
    ),
    min_size=1,
    max_size=40,
    unique_by=lambda v: (v.person, v.venue, v.start),
)


def oracle_shape(visits, case: CaseQuery, rules: TraceRules) -> dict:  # type: ignore[no-untyped-def]
    return oracle_trace(
        visits, case.person, case.from_us, case.to_us, rules.depth, rules.grace_us, rules.min_overlap_us, rules.until_us
    )


traces = st.tuples(
    visit_lists,
    st.lists(st.tuples(st.integers(0, 7), st.integers(0, 300), st.integers(0, 400)), min_size=1, max_size=4),
    st.integers(1, 3),
    st.sampled_from([0, 30]),
    st.sampled_from([0, 10]),
    st.sampled_from([500, 700, 100_000]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(traces)
def test_sql_trace_equals_brute_force_oracle_single_and_batch(store, trace) -> None:  # type: ignore[no-untyped-def]
    """The fast path (chDB, two set-based reads per hop) agrees with the brute-force oracle, one case at
    a time and as a batch; and the batch equals the single-case results, case by case."""
    visits, case_specs, depth, grace, min_overlap, until = trace
    insert_visits(store, visits)
    rules = TraceRules(depth=depth, grace_us=grace * M, min_overlap_us=min_overlap * M, until_us=T0 + until * M)
    cases = [CaseQuery(f"c{i}", f"p{p}", T0 + a * M, T0 + (a + w) * M) for i, (p, a, w) in enumerate(case_specs)]
    reader = StoreHopReader(store)
    singles = [trace_shape(trace_case(reader, case, rules)) for case in cases]
    assert singles == [oracle_shape(visits, case, rules) for case in cases]
    assert [trace_shape(r) for r in trace_cases(reader, cases, rules)] == singles


changes = st.lists(st.tuples(st.sampled_from(["revise", "withdraw", "new"]), st.integers(0, 39), st.integers(0, 300)),
                   max_size=12)  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(traces, changes, st.booleans())
def test_trace_index_equals_store_reader_and_oracle_after_build_and_feed(  # type: ignore[no-untyped-def]
    store, tmp_path_factory, trace, later, saved
) -> None:
    """The index built from the store, then caught up from the visit feed after new visits, new versions and
    withdrawn visits were stored, traces exactly as the store reader and the oracle (optionally through its
    files: saved, then memory-mapped back as another process would)."""
    visits, case_specs, depth, grace, min_overlap, until = trace
    insert_visits(store, visits)
    followed = build(store, store_id_of(store))
    final = {f"s{i}": v for i, v in enumerate(visits)}
    rows = []
    for n, (kind, which, minutes) in enumerate(later):
        key = f"s{which}"
        if kind == "new" or key not in final:
            key = f"n{n}"
            final[key] = Visit(f"p{which % 8}", f"V{which % 3}", T0 + minutes * M, T0 + (minutes + 45) * M)
            rows.append((final[key], key, 1, 0))
        elif kind == "revise":
            v = final[key]
            final[key] = Visit(v.person, v.venue, v.start, v.start + minutes * M)
            rows.append((final[key], key, 2 + n, 0))
        else:
            rows.append((final.pop(key), key, 2 + n, 1))
    if rows:
        store.insert("qrtrace.visits_by_venue", {
            "venue_id": [v.venue for v, *_ in rows], "person": [v.person for v, *_ in rows],
            "start_us": np.array([v.start for v, *_ in rows]), "end_us": np.array([v.end for v, *_ in rows]),
            "closed_by": np.zeros(len(rows), np.int8), "version": np.array([r[2] for r in rows], np.uint64),
            "opened_by": [r[1] for r in rows], "withdrawn": np.array([r[3] for r in rows], np.uint8),
        })  # fmt: skip
    followed = catch_up(store, followed)
    if saved:
        files = IndexFiles(tmp_path_factory.mktemp("index"))
        files.save(followed)
        followed = files.load(followed.store_id)
    rules = TraceRules(depth=depth, grace_us=grace * M, min_overlap_us=min_overlap * M, until_us=T0 + until * M)
    cases = [CaseQuery(f"c{i}", f"p{p}", T0 + a * M, T0 + (a + w) * M) for i, (p, a, w) in enumerate(case_specs)]
    by_index = [trace_shape(r) for r in trace_cases(IndexHopReader(followed.index, DEFAULT_MAX_VISIT_US), cases, rules)]
    assert by_index == [trace_shape(r) for r in trace_cases(StoreHopReader(store), cases, rules)]
    assert by_index == [oracle_shape(list(final.values()), case, rules) for case in cases]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(traces)
def test_candidates_split_by_day_agree_with_the_oracle(store, trace) -> None:  # type: ignore[no-untyped-def]
    """The large-batch read (one SELECT per day, UNION ALL) forced on small scenarios."""
    from qrtrace.queries import visit_reader

    visits, case_specs, depth, grace, min_overlap, until = trace
    insert_visits(store, visits)
    rules = TraceRules(depth=depth, grace_us=grace * M, min_overlap_us=min_overlap * M, until_us=T0 + until * M)
    cases = [CaseQuery(f"c{i}", f"p{p}", T0 + a * M, T0 + (a + w) * M) for i, (p, a, w) in enumerate(case_specs)]
    split, visit_reader.SPLIT_BY_DAY_CELLS = visit_reader.SPLIT_BY_DAY_CELLS, 0
    try:
        got = [trace_shape(r) for r in trace_cases(StoreHopReader(store), cases, rules)]
    finally:
        visit_reader.SPLIT_BY_DAY_CELLS = split
    assert got == [oracle_shape(visits, case, rules) for case in cases]


def test_provisional_row_is_replaced_by_the_final_one(store) -> None:  # type: ignore[no-untyped-def]
    """A visit stored open (version 0, end = start + dwell) and later closed (version 1) counts once, as closed."""
    insert_visits(store, [Visit("f0", "V", T0 + 100 * M, T0 + 110 * M), Visit("x", "V", T0 + 50 * M, T0 + 120 * M)])
    store.insert(  # x's visit was first stored provisionally, ending (start + dwell) before f0 arrived
        "qrtrace.visits_by_venue",
        {
            "venue_id": ["V"], "person": ["x"], "start_us": np.array([T0 + 50 * M]),
            "end_us": np.array([T0 + 60 * M]), "closed_by": np.zeros(1, np.int8),
            "version": np.zeros(1, np.uint8), "opened_by": ["s1"],
        },
    )  # fmt: skip
    result = trace_case(StoreHopReader(store), CaseQuery("c", "f0", T0, T0 + 200 * M), TraceRules(grace_us=30 * M))
    assert [(c.person, [(e.start, e.overlap_us) for e in c.exposures]) for c in result.contacts] == [
        ("x", [(T0 + 100 * M, 20 * M)])  # the final row only: x stayed until 120, f0 was there 100-110
    ]


def test_retention_drops_whole_old_day_partitions(store) -> None:  # type: ignore[no-untyped-def]
    later = T0 + 30 * US_PER_DAY
    insert_visits(store, [Visit("a", "V", T0, T0 + M), Visit("b", "V", later, later + M)])
    dropped = drop_expired_partitions(store, cutoff_day=(T0 + 31 * US_PER_DAY) // US_PER_DAY - 21)
    left = store.query("SELECT person FROM qrtrace.visits_by_person ORDER BY person")["person"]
    assert ("visits_by_venue", T0 // US_PER_DAY) in dropped
    assert left == ["b"]


def test_forged_or_altered_venue_qr_is_rejected() -> None:
    key = venue_signing_key(bytes(32))
    other = venue_signing_key(bytes([1]) * 32)
    venue = Venue("VN4675010", "Karaoke Hoàng Gia", "karaoke", "02536", 200)
    from datetime import UTC, datetime

    payload = encode_venue_qr(venue, key, datetime(2021, 7, 20, tzinfo=UTC))
    assert decode_venue_qr(payload, key.public_key()).venue_id == "VN4675010"
    prefix, claims, sig = payload.split(".")
    altered = ".".join([prefix, claims[:-2] + ("A" if claims[-2] != "A" else "B") + claims[-1], sig])
    for bad in (
        altered,
        encode_venue_qr(venue, other, datetime(2021, 7, 20, tzinfo=UTC)),
        payload[:-5],
        "VN4675010",
    ):
        with pytest.raises(ForgedVenueQrError):
            decode_venue_qr(bad, key.public_key())


def test_the_reader_caps_visits_at_the_longest_the_settings_allow(store: ChdbStore) -> None:
    """A visit longer than any cap (written before caps existed) is read as ending at the cap, so it
    neither widens every look-back nor drags its person in; with a higher cap it is read whole."""
    from qrtrace.settings import Settings
    from qrtrace.stream_processors.config import longest_allowed_visit_us

    long_visit = Visit("p-long", "V1", T0, T0 + 30 * 60 * M)  # 30 hours
    case = Visit("p-case", "V1", T0 + 26 * 60 * M, T0 + 27 * 60 * M)
    insert_visits(store, [long_visit, case])
    query = CaseQuery("c", "p-case", T0, T0 + 2 * US_PER_DAY)
    rules = TraceRules(depth=1, grace_us=0)
    default = longest_allowed_visit_us(Settings())
    assert default == 24 * 60 * M  # an office's three times eight hours
    assert trace_case(StoreHopReader(store, default), query, rules).contacts == []
    wider = longest_allowed_visit_us(Settings(visit_cap_factor=4))  # 32 hours
    assert [c.person for c in trace_case(StoreHopReader(store, wider), query, rules).contacts] == ["p-long"]


CATEGORY = {"V0": "market", "V1": "hospital", "V2": "karaoke"}
zoned_visit_lists = st.lists(
    st.builds(
        lambda p, v, s, d, z: Visit(f"p{p}", f"V{v}", T0 + s * M, T0 + (s + d) * M, z),
        st.integers(0, 7),
        st.integers(0, 2),
        st.integers(0, 120).map(lambda m: 5 * m),
        st.one_of(st.integers(0, 4), st.integers(0, 48)).map(lambda m: 5 * m),  # many short stays
        st.sampled_from(["", "", "Khu A", "Khu B"]),
    ),
    min_size=15,  # crowded enough that most cases have contacts
    max_size=40,
    unique_by=lambda v: (v.person, v.venue, v.start),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(zoned_visit_lists, st.sets(st.tuples(st.integers(0, 2), st.integers(0, 50)), min_size=4, max_size=30),
       st.sampled_from(["qrtrace-2026", "qrtrace-2026", "pc-covid-2021"]), st.sampled_from(["all", "close"]),
       st.integers(0, 39), st.integers(0, 120))  # fmt: skip
def test_tiers_from_the_store_agree_through_both_readers_and_the_oracle(  # type: ignore[no-untyped-def]
    store, visits, over, rule_name, sources, which, before
) -> None:
    """Zones, venue categories and over-capacity windows as the store holds them (visits_by_venue.zone,
    venues.category, occupancy.over_capacity), read by `risk_context` for each reader's keys: the index and
    the store reader label every exposure as the brute-force oracle does, close-only sources included."""
    from qrtrace.queries.risk import load_rule
    from qrtrace.queries.risk_store import risk_context
    from qrtrace.queries.trace_index import as_bytes
    from tests.oracles import oracle_tier

    insert_visits(store, visits)
    store.execute("TRUNCATE TABLE qrtrace.venues")
    store.execute("TRUNCATE TABLE qrtrace.occupancy")
    store.insert("qrtrace.venues", {"venue_id": list(CATEGORY), "name": list(CATEGORY),
                                    "category": list(CATEGORY.values()), "commune_code": ["02536"] * 3,
                                    "capacity": [10] * 3, "registered_at_us": [1] * 3})  # fmt: skip
    window = 15 * M
    windows = sorted(over)
    if windows:
        store.insert("qrtrace.occupancy", {
            "venue_id": [f"V{v}" for v, _ in windows], "window_start_us": [T0 + w * window for _, w in windows],
            "arrivals": [20] * len(windows), "present": [20] * len(windows), "capacity": [10] * len(windows),
            "over_capacity": [1] * len(windows), "version": [1] * len(windows)})  # fmt: skip
    rule = load_rule(rule_name)
    rules = TraceRules(depth=2, grace_us=0, until_us=T0 + 100_000 * M, risk=rule, sources=sources)
    seen = visits[which % len(visits)]  # the case is someone who went out, infectious around that visit
    case = CaseQuery("c", seen.person, seen.start - before * M, seen.start + 400 * M)
    index = build(store, store_id_of(store)).index
    wide = int(index.zones.codes(as_bytes(np.asarray([""], dtype=object)))[0])
    by_code = risk_context(store, rule, window, 0, lambda ids: index.venues.codes(as_bytes(ids)), len(index.venues),
                           wide)  # fmt: skip
    got = trace_shape(trace_case(IndexHopReader(index, DEFAULT_MAX_VISIT_US), case, rules, by_code), tiers=True)
    by_name = risk_context(store, rule, window)
    assert got == trace_shape(trace_case(StoreHopReader(store), case, rules, by_name), tiers=True)
    tier = oracle_tier(rule, CATEGORY, {(f"V{v}", w + T0 // window) for v, w in over}, window)
    want = oracle_trace(visits, case.person, case.from_us, case.to_us, rules.depth, rules.grace_us, 0,
                        rules.until_us, tier, sources == "close")  # fmt: skip
    assert got == want
