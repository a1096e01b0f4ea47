"""The DuckDB baseline traces exactly what the brute-force oracle does, one case at a time and in batches."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.duckdb_baseline import DuckDBTrace
from tests.oracles import oracle_trace

MINUTE = 60
PEOPLE = [*(f"p{i}" for i in range(7)), "Ngô"]  # non-ASCII: ids are numbered in name order
VENUES = ["A", "Đ", "b"]


class V(NamedTuple):
    person: str
    venue: str
    start: int
    end: int


def table(visits: list[V]) -> pa.Table:
    return pa.table(
        {
            "person": pa.array([v.person for v in visits], pa.string()),
            "venue": pa.array([v.venue for v in visits], pa.string()),
            "start": pa.array([v.start for v in visits], pa.int64()),
            "end": pa.array([v.end for v in visits], pa.int64()),
        }
    )


# Times on a 5-minute grid over 3 hours (in seconds), so boundaries coincide often enough to be tested:
# t.end == s.start, t.start == s.end + grace, overlap == min_overlap, visit end == from, start == until,
# equal starts, zero-length stays.
minutes = st.integers(0, 36).map(lambda k: 5 * k)
stays = st.integers(0, 24).map(lambda k: 5 * k)
visit_lists = st.lists(
    st.builds(
        lambda p, v, minute, stay: V(p, v, minute * MINUTE, (minute + stay) * MINUTE),
        st.sampled_from(PEOPLE),
        st.sampled_from(VENUES),
        minutes,
        stays,
    ),
    min_size=12,
    max_size=40,
)
windows = st.tuples(minutes, minutes).map(lambda w: (w[0] * MINUTE, (w[0] + w[1]) * MINUTE))
rules = st.fixed_dictionaries(
    {
        "depth": st.integers(1, 3),
        "grace": st.sampled_from([0, 900, 1800]),
        "min_overlap": st.sampled_from([0, 300, 1200]),
        "until": st.sampled_from([60 * MINUTE, 120 * MINUTE, 2**62]),
    }
)


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[V], list[tuple[str, tuple[int, int]]]]:
    """Visits, then 1..4 cases, mostly of people who have visits (someone without any is a valid case too)."""
    visits = draw(visit_lists)
    visitors = sorted({v.person for v in visits})
    person = st.one_of(st.sampled_from(visitors), st.sampled_from(PEOPLE))
    return visits, draw(st.lists(st.tuples(person, windows), min_size=1, max_size=4))


@settings(max_examples=60, deadline=None)
@given(world=worlds(), rules=rules)
def test_trace_and_trace_many_match_the_oracle(world: tuple[list[V], list], rules: dict) -> None:
    visits, cases = world
    db = DuckDBTrace(table(visits), threads=1)
    try:
        single = {}
        for i, (person, (frm, to)) in enumerate(cases):
            got = db.trace(person, frm, to, **rules)
            assert got == oracle_trace(visits, person, frm, to, **rules)
            single[f"case{i}"] = got
        batch = [(f"case{i}", person, frm, to) for i, (person, (frm, to)) in enumerate(cases)]
        assert db.trace_many(batch, **rules) == single
    finally:
        db.close()


def m(person: str, venue: str, start: int, end: int) -> V:
    """A visit with times in minutes."""
    return V(person, venue, start * MINUTE, end * MINUTE)


# Each edge of the rules, exactly on the boundary and one minute inside it: (visits, case window in minutes,
# rules, the contacts expected). The case is always "a".
BOUNDARIES = {
    "target starts at source end + grace: not exposed": (
        [m("a", "A", 0, 60), m("b", "A", 90, 120), m("c", "A", 89, 120)],
        (0, 60),
        {"grace": 1800},
        {"c"},
    ),
    "target ends when the source starts: not exposed": (
        [m("a", "A", 60, 120), m("b", "A", 0, 60), m("c", "A", 0, 61)],
        (60, 120),
        {"grace": 0},
        {"c"},
    ),
    "overlap equal to min_overlap counts": (
        [m("a", "A", 0, 60), m("b", "A", 40, 100), m("c", "A", 41, 100)],
        (0, 60),
        {"grace": 0, "min_overlap": 1200},
        {"b"},
    ),
    "case visits ending at from or starting at to are sources": (
        [
            *(m("a", "A", 0, 10), m("a", "B", 50, 60), m("a", "C", 51, 60)),
            *(m("b", "A", 5, 10), m("c", "B", 55, 60), m("d", "C", 55, 60)),
        ],
        (10, 50),
        {"grace": 0},
        {"b", "c"},
    ),
    "contact visits starting at first exposure or at until are sources": (
        [
            *(m("a", "A", 0, 60), m("b", "A", 30, 60), m("b", "B", 30, 40), m("b", "C", 29, 40)),
            *(m("b", "D", 120, 130), m("b", "E", 121, 130)),
            *(m("c", "B", 30, 40), m("d", "C", 29, 40), m("e", "D", 120, 130), m("f", "E", 121, 130)),
        ],
        (0, 60),
        {"grace": 0, "depth": 2, "until": 120 * MINUTE},
        {"b", "c", "e"},
    ),
}


@pytest.mark.parametrize("name", sorted(BOUNDARIES))
def test_boundaries(name: str) -> None:
    visits, (frm, to), overrides, expected = BOUNDARIES[name]
    rules = {"depth": 1, "grace": 0, "min_overlap": 0, "until": 2**62, **overrides}
    db = DuckDBTrace(table(visits), threads=1)
    try:
        got = db.trace("a", frm * MINUTE, to * MINUTE, **rules)
        assert got == oracle_trace(visits, "a", frm * MINUTE, to * MINUTE, **rules)
        assert set(got) == expected
    finally:
        db.close()


def test_duplicate_exposures_are_kept_not_collapsed() -> None:
    """Two identical source visits expose the same target twice; one source visit exposes it once."""
    visits = [V("a", "A", 0, 600), V("a", "A", 0, 600), V("b", "A", 300, 900), V("c", "A", 800, 1000)]
    db = DuckDBTrace(table(visits))
    try:
        got = db.trace("a", 0, 1000, depth=2, grace=0)
        assert got == oracle_trace(visits, "a", 0, 1000, depth=2, grace=0, min_overlap=0, until=2**62)
        assert got["b"] == (1, 300, [("A", 300, 600, 300, "a", 0)] * 2)
        assert got["c"] == (2, 800, [("A", 800, 900, 100, "b", 1)])
    finally:
        db.close()


def test_parquet_input_and_quoted_names(tmp_path: Path) -> None:
    visits = [V("o'neil", "A", 0, 600), V("b", "A", 300, 900), V("b", "B", 1000, 1200), V("c", "B", 1100, 1300)]
    path = tmp_path / "visits.parquet"
    pq.write_table(table(visits), path)
    db = DuckDBTrace(path)
    try:
        got = db.trace("o'neil", 0, 1000, depth=2, grace=0)
        assert got == oracle_trace(visits, "o'neil", 0, 1000, depth=2, grace=0, min_overlap=0, until=2**62)
        assert set(got) == {"b", "c"}
    finally:
        db.close()
