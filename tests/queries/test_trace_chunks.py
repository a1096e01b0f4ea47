"""A batch traced a chunk of cases at a time equals each case traced alone, whatever the chunk sizes,
and its exposure rows (what the API stores) rebuild the same results (pure, no store)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from qrtrace.queries.trace import (
    CaseQuery,
    InMemoryVisits,
    TraceRules,
    Visit,
    exposure_rows,
    trace_case,
    trace_chunks,
)
from qrtrace.stream_processors.batch import US_PER_MINUTE

M = US_PER_MINUTE
PEOPLE = [f"p{i}" for i in range(8)]
visit = st.tuples(st.sampled_from(PEOPLE), st.sampled_from(["V1", "V2", "V3"]), st.integers(0, 2 * 24 * 60),
                  st.integers(1, 400))  # fmt: skip


def _shape(result) -> list[tuple]:  # type: ignore[no-untyped-def]
    return [(c.person, c.hop, c.first_exposure, tuple(c.exposures)) for c in result.contacts]


@settings(max_examples=60, deadline=None)
@given(st.lists(visit, min_size=1, max_size=40), st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=7),
       st.integers(1, 50), st.integers(1, 3))  # fmt: skip
def test_chunks_equal_each_case_alone(raw, persons, max_rows, depth) -> None:  # type: ignore[no-untyped-def]
    reader = InMemoryVisits([Visit(p, v, s * M, (s + d) * M) for p, v, s, d in raw])
    rules = TraceRules(depth=depth, grace_us=30 * M)
    cases = [CaseQuery(f"c{i}", p, 0, 2 * 24 * 60 * M) for i, p in enumerate(persons)]
    progress: list[float] = []
    seen = 0
    for first, batch in trace_chunks(reader, cases, rules, max_rows, progress.append):
        assert first == seen and batch.cases == cases[first : first + len(batch.cases)]
        seen += len(batch.cases)
        rows = exposure_rows(batch, first)
        for i, result in enumerate(batch.results()):
            alone = trace_case(reader, cases[first + i], rules)
            assert _shape(result) == _shape(alone)
            mine = rows["case_index"] == first + i
            assert mine.sum() == sum(len(c.exposures) for c in alone.contacts)
            by_person = {c.person: c for c in alone.contacts}
            for person, hop, first_us, source_hop in zip(rows["person"][mine], rows["hop"][mine],
                                                         rows["first_exposure_us"][mine], rows["source_hop"][mine],
                                                         strict=True):  # fmt: skip
                assert (by_person[person].hop, by_person[person].first_exposure) == (hop, first_us)
                assert source_hop == hop - 1
    assert seen == len(cases)
    assert progress == sorted(progress) and progress[-1] == 1.0


def test_chunks_grow_to_the_row_budget_and_shrink_for_heavy_cases() -> None:
    # Everyone meets everyone at V1: each case reaches all others, 7 exposures per case at depth 1.
    reader = InMemoryVisits([Visit(p, "V1", 0, 60 * M) for p in PEOPLE])
    cases = [CaseQuery(f"c{i}", PEOPLE[i % 8], 0, 60 * M) for i in range(40)]
    sizes = [len(b.cases) for _, b in trace_chunks(reader, cases, TraceRules(depth=1), max_rows=28)]
    assert sizes[0] == 1 and max(sizes) == 4 and sum(sizes) == 40  # 28 rows / 7 per case
    assert all(len(b.exposures["case"]) <= 28 for _, b in trace_chunks(reader, cases, TraceRules(depth=1), 28))
    assert np.array_equal(np.unique(np.concatenate([exposure_rows(b, f)["case_index"] for f, b in
                                                    trace_chunks(reader, cases, TraceRules(depth=1), 28)])),
                          np.arange(40))  # fmt: skip
