"""The pure rules of public exposure sites (queries/exposure_sites.py): which visits, the window of a visit,
merging, idempotent ids, and what the public may see (never a person)."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import date, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from qrtrace.queries.exposure_sites import (
    PUBLIC_FIELDS,
    Site,
    VenueInfo,
    case_sites,
    case_windows,
    local_day_bounds,
    merge_intervals,
    public_csv,
    public_site,
    select_public,
    site_id,
    to_write,
    withdrawn_copy,
)

VN = timezone(timedelta(hours=7))
MIN = 60_000_000
GRACE = 30 * MIN
VENUES = ("V1", "V2", "V3")

visit = st.tuples(st.sampled_from(VENUES), st.integers(0, 2_000), st.integers(0, 600), st.booleans())
visits_st = st.lists(visit, max_size=25)


def _columns(visits: list[tuple[str, int, int, bool]]) -> tuple[list[str], list[int], list[int], list[int]]:
    return ([v for v, *_ in visits], [s * MIN for _, s, _, _ in visits], [(s + d) * MIN for _, s, d, _ in visits],
            [int(w) for *_, w in visits])  # fmt: skip


def _sources(visits, from_us: int, to_us: int, cap: int | None = None):  # type: ignore[no-untyped-def]
    """The visits the rule counts, as (venue, start, end): intersecting [from, to], not withdrawn, capped."""
    out = []
    for venue, start, length, withdrawn in visits:
        s, e = start * MIN, (start + length) * MIN
        if cap is not None:
            e = min(e, s + cap)
        if not withdrawn and s <= to_us and e >= from_us:
            out.append((venue, s, e))
    return out


@settings(max_examples=300, deadline=None)
@given(visits_st, st.integers(0, 2_600), st.integers(0, 800))
def test_a_window_covers_exactly_the_visits_plus_grace(visits, from_min: int, span_min: int) -> None:
    from_us, to_us = from_min * MIN, (from_min + span_min) * MIN
    windows = case_windows(*_columns(visits)[:3], from_us, to_us, GRACE, withdrawn=_columns(visits)[3])
    sources = _sources(visits, from_us, to_us)
    points = sorted({p + d for _, s, e in sources for p in (s, e + GRACE) for d in (-1, 0, 1)})
    for venue in VENUES:
        mine = [(w.from_us, w.to_us) for w in windows if w.venue_id == venue]
        for p in points:
            covered = any(lo <= p < hi for lo, hi in mine)
            assert covered == any(v == venue and s <= p < e + GRACE for v, s, e in sources)
        # merged: sorted, disjoint and not touching
        assert all(a[1] < b[0] for a, b in itertools.pairwise(mine))
        assert all(lo < hi for lo, hi in mine)
    assert {w.venue_id for w in windows} == {v for v, _, _ in sources}


@settings(max_examples=300, deadline=None)
@given(visits_st, st.integers(0, 2_600), st.integers(0, 800), st.integers(0, 2_600), st.integers(1, 300),
       st.sampled_from(VENUES))  # fmt: skip
def test_someone_overlapping_a_window_is_whom_the_trace_finds(visits, from_min, span_min, t_start, t_len,
                                                              venue) -> None:  # fmt: skip
    """A visit t overlaps a published window at its venue exactly when the trace rule (minimum overlap 0)
    makes some source visit s of the case expose it: t.start < s.end + grace and s.start < t.end."""
    from_us, to_us = from_min * MIN, (from_min + span_min) * MIN
    a, b = t_start * MIN, (t_start + t_len) * MIN
    windows = case_windows(*_columns(visits)[:3], from_us, to_us, GRACE, withdrawn=_columns(visits)[3])
    overlaps_site = any(w.venue_id == venue and a < w.to_us and w.from_us < b for w in windows)
    exposed = any(v == venue and a < e + GRACE and s < b for v, s, e in _sources(visits, from_us, to_us))
    assert overlaps_site == exposed


@given(visits_st, st.integers(1, 300))
def test_long_visits_are_capped_as_the_trace_readers_cap_them(visits, cap_min: int) -> None:
    cap = cap_min * MIN
    windows = case_windows(*_columns(visits)[:3], 0, 10_000 * MIN, 0, cap, _columns(visits)[3])
    for w in windows:
        assert any(v == w.venue_id and s == w.from_us for v, s, _ in _sources(visits, 0, 10_000 * MIN, cap))
    merged = {v: merge_intervals([(s, e) for vv, s, e in _sources(visits, 0, 10_000 * MIN, cap) if vv == v])
              for v in VENUES}  # fmt: skip
    assert [(w.venue_id, w.from_us, w.to_us) for w in windows] == [
        (v, lo, hi) for v in sorted(merged) for lo, hi in merged[v]]  # fmt: skip


def test_visits_outside_the_window_and_withdrawn_visits_make_no_site() -> None:
    venues, starts, ends = ["A", "B", "C", "D"], [0, 100 * MIN, 50 * MIN, 60 * MIN], [10 * MIN, 110 * MIN,
                                                                                       55 * MIN, 70 * MIN]
    windows = case_windows(venues, starts, ends, 20 * MIN, 90 * MIN, GRACE, withdrawn=[0, 0, 0, 1])
    assert [(w.venue_id, w.from_us, w.to_us) for w in windows] == [("C", 50 * MIN, 85 * MIN)]
    # a visit that started before the window but was still under way at its start counts, unclipped
    windows = case_windows(["A"], [0], [30 * MIN], 20 * MIN, 90 * MIN, GRACE)
    assert [(w.from_us, w.to_us) for w in windows] == [(0, 60 * MIN)]


def test_two_visits_closer_than_the_grace_make_one_site() -> None:
    windows = case_windows(["M", "M", "M"], [0, 40 * MIN, 300 * MIN], [20 * MIN, 60 * MIN, 310 * MIN], 0,
                           400 * MIN, GRACE)  # fmt: skip
    assert [(w.from_us, w.to_us) for w in windows] == [(0, 90 * MIN), (300 * MIN, 340 * MIN)]


@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20), st.integers(), st.integers())
def test_site_ids_are_stable_and_per_case(person: str, venue: str, lo: int, hi: int) -> None:
    assert site_id(person, venue, lo, hi) == site_id(person, venue, lo, hi)
    assert site_id(person, venue, lo, hi) != site_id(person + "x", venue, lo, hi)
    assert site_id(person, venue, lo, hi) != site_id(person, venue + "x", lo, hi)
    assert site_id(person, venue, lo, hi) != site_id(person, venue, lo, hi + 1)


def _sites(n: int, person: str = "pseudo-abc", case_id: str = "CASE-1") -> list[Site]:
    windows = case_windows([f"V{i % 3}" for i in range(n)], [i * 500 * MIN for i in range(n)],
                           [(i * 500 + 30) * MIN for i in range(n)], 0, 10**15, GRACE)  # fmt: skip
    return case_sites(windows, person, case_id, "Lời khuyên", "Advice", 1_000, "epi-1")


def test_publishing_the_same_sites_again_writes_nothing() -> None:
    sites = _sites(4)
    write, unchanged = to_write(sites, {})
    assert write == sites and not unchanged
    later = case_sites([], "", "", "", "", 0, "")
    assert later == []
    again = _sites(4)
    write, unchanged = to_write(again, {s.site_id: s for s in sites})
    assert write == [] and unchanged == sites
    withdrawn = {s.site_id: withdrawn_copy(s, 5_000, "epi-2") for s in sites}
    write, unchanged = to_write(again, withdrawn)
    assert [s.site_id for s in write] == [s.site_id for s in sites] and not unchanged
    assert all(not s.withdrawn and s.version > withdrawn[s.site_id].version for s in write)


venue_info = {"V0": VenueInfo("Chợ Tân Trào", "market", "02536"), "V1": VenueInfo("Quán =cmd", "restaurant", "02537"),
              "V2": VenueInfo("Bến xe", "bus_station", "02536")}  # fmt: skip
communes = {"02536": "Tân Trào", "02537": "Minh Thanh"}
categories = {"market": ("Chợ", "Market"), "restaurant": ("Nhà hàng", "Restaurant"), "bus_station": ("Bến xe", "Bus")}

secret = st.text(alphabet="abcdefXYZ0123456789", min_size=12, max_size=24)


@given(secret, secret, secret, st.sampled_from(["vi", "en"]), st.integers(1, 8))
def test_a_public_site_never_names_a_person(person: str, case_id: str, actor: str, lang: str, n: int) -> None:
    """Whatever the case's pseudonym, case id and publisher, a public row holds the allowlisted fields only
    and none of those values, in JSON fields or in the CSV."""
    windows = case_windows([f"V{i % 3}" for i in range(n)], [i * 500 * MIN for i in range(n)],
                           [(i * 500 + 30) * MIN for i in range(n)], 0, 10**15, GRACE)  # fmt: skip
    sites = case_sites(windows, "P" + person, "C" + case_id, "Khuyến cáo", "Advice", 1_000, "A" + actor)
    rows = [public_site(s, venue_info, communes, categories, lang, VN) for s in sites]
    text = public_csv(rows, lang)
    for row in rows:
        assert tuple(row) == PUBLIC_FIELDS
        assert row["from"].endswith("+07:00") and row["to"].endswith("+07:00")
        for value in row.values():
            assert "P" + person not in value and "C" + case_id not in value and "A" + actor not in value
    for hidden in ("P" + person, "C" + case_id, "A" + actor):
        assert hidden not in text


def test_the_csv_is_escaped_and_in_the_language_asked() -> None:
    sites = _sites(2)
    rows = [public_site(s, venue_info, communes, categories, "en", VN) for s in sites]
    parsed = list(csv.reader(io.StringIO(public_csv(rows, "en").lstrip("\ufeff"))))
    assert parsed[0][:3] == ["Site", "Venue id", "Venue"] and len(parsed) == 3
    assert "'Quán =cmd" not in parsed[1] and "Quán =cmd" in parsed[2]  # only a leading = is a formula
    vi = list(csv.reader(io.StringIO(public_csv(rows, "vi").lstrip("\ufeff"))))
    assert vi[0][2] == "Địa điểm"
    formula = public_site(_sites(1)[0], {"V0": VenueInfo("=HYPERLINK(1)", "market", "02536")}, communes,
                          categories, "vi", VN)  # fmt: skip
    assert list(csv.reader(io.StringIO(public_csv([formula], "vi").lstrip("\ufeff"))))[1][2] == "'=HYPERLINK(1)"


def test_select_public_filters_by_commune_and_local_day() -> None:
    day = date(2021, 7, 20)
    start, end = local_day_bounds(day, VN)
    assert end - start == 86_400_000_000
    mk = _sites(1)[0]
    from dataclasses import replace

    inside = replace(mk, site_id="a", venue_id="V0", from_us=start + 3600 * 10**6, to_us=start + 7200 * 10**6)
    before = replace(mk, site_id="b", venue_id="V0", from_us=start - 7200 * 10**6, to_us=start)  # ends at midnight
    across = replace(mk, site_id="c", venue_id="V1", from_us=end - 60 * 10**6, to_us=end + 3600 * 10**6)
    gone = withdrawn_copy(replace(inside, site_id="d"), 1, "x")
    sites = [inside, before, across, gone]
    assert [s.site_id for s in select_public(sites, venue_info, day=day, tz=VN)] == ["a", "c"]
    assert [s.site_id for s in select_public(sites, venue_info, commune="02537", tz=VN)] == ["c"]
    assert [s.site_id for s in select_public(sites, venue_info, tz=VN)] == ["b", "a", "c"]
    assert select_public(sites, venue_info, commune="00000", tz=VN) == []
