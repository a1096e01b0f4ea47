"""The SQL-backed trace (chDB) equals the in-memory reference on random scenarios; retention and QR."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qrtrace.domain.venue_qr import ForgedVenueQrError, decode_venue_qr, encode_venue_qr, venue_signing_key
from qrtrace.domain.venues import Venue
from qrtrace.queries.trace import CaseQuery, InMemoryVisits, TraceRules, Visit, trace_case
from qrtrace.queries.visit_reader import StoreHopReader
from qrtrace.sinks.chdb_store import ChdbStore
from qrtrace.sinks.retention import drop_expired_partitions
from qrtrace.stream_processors.batch import US_PER_DAY, US_PER_MINUTE

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


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(visit_lists, st.integers(0, 7), st.integers(1, 3), st.sampled_from([0, 30]), st.sampled_from([0, 10]))
def test_sql_trace_equals_in_memory(store, visits, case, depth, grace, min_overlap) -> None:  # type: ignore[no-untyped-def]
    insert_visits(store, visits)
    query = CaseQuery("c", f"p{case}", T0, T0 + 400 * M)
    rules = TraceRules(depth=depth, grace_us=grace * M, min_overlap_us=min_overlap * M, until_us=T0 + 700 * M)
    shape = lambda r: [(c.person, c.hop, c.first_exposure, c.exposures) for c in r.contacts]  # noqa: E731
    assert shape(trace_case(StoreHopReader(store), query, rules)) == shape(
        trace_case(InMemoryVisits(visits), query, rules)
    )


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
