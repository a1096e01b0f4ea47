"""The columnar helpers under the trace: equi-join, cell bounds, placed-pair lookup (pure, no store)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from qrtrace.queries.trace import BUCKET_US, contains_pairs, join_indices, source_cells
from qrtrace.stream_processors.batch import US_PER_MINUTE

M = US_PER_MINUTE
keys = st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), max_size=30)


def objects(values: list[str]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


@settings(max_examples=100, deadline=None)
@given(keys, keys)
def test_join_indices_is_the_nested_loop_equi_join(left, right) -> None:  # type: ignore[no-untyped-def]
    li, ri = join_indices(objects(left), objects(right))
    got = sorted(zip(li.tolist(), ri.tolist(), strict=True))
    assert got == sorted((i, j) for i, a in enumerate(left) for j, b in enumerate(right) if a == b)


visits = st.tuples(st.integers(0, 3 * 24 * 60), st.integers(0, 300))  # start minute, duration minutes


@settings(max_examples=150, deadline=None)
@given(visits, st.lists(visits, min_size=1, max_size=20), st.sampled_from([0, 15, 30]))
def test_every_exposed_visit_starts_in_one_of_its_sources_cells(source, targets, grace) -> None:  # type: ignore[no-untyped-def]
    """The cells bound the candidate read: no visit the source exposes may start outside them."""
    s_start, s_end = source[0] * M, (source[0] + source[1]) * M
    longest = max(d for _, d in targets) * M
    cells = source_cells(
        {"s_start": np.array([s_start]), "s_end": np.array([s_end]), "venue_id": objects(["V"])}, longest, grace * M
    )
    buckets = set(cells["bucket"].tolist())
    for start, duration in targets:
        t_start, t_end = start * M, (start + duration) * M
        if t_start < s_end + grace * M and s_start < t_end:
            assert t_start // BUCKET_US in buckets


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["p", "q", "r"])), max_size=10),
    st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["p", "q", "r", "s"])), max_size=10),
)
def test_contains_pairs_matches_a_set_of_tuples(table, probes) -> None:  # type: ignore[no-untyped-def]
    t = {"case": np.array([c for c, _ in table], dtype=np.int64), "person": objects([p for _, p in table])}
    got = contains_pairs(t, np.array([c for c, _ in probes], dtype=np.int64), objects([p for _, p in probes]))
    assert got.tolist() == [pair in set(table) for pair in probes]


@settings(max_examples=100, deadline=None)
@given(keys, keys, st.integers(1, 8))
def test_join_slices_are_the_join_in_bounded_pieces(left, right, max_pairs) -> None:  # type: ignore[no-untyped-def]
    from qrtrace.queries.trace import join_slices

    pieces = list(join_slices(objects(left), objects(right), max_pairs))
    whole = join_indices(objects(left), objects(right))
    assert all(len(li) <= max_pairs or len(set(li.tolist())) == 1 for li, _ in pieces)
    got = [(i, j) for li, ri in pieces for i, j in zip(li.tolist(), ri.tolist(), strict=True)]
    assert got == list(zip(whole[0].tolist(), whole[1].tolist(), strict=True))
