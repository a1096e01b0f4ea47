"""The hotspot ranking's pure core (queries/hotspots.py build_hotspots): order, scope, limit, the mean."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from qrtrace.queries.hotspots import build_hotspots, rank_key
from qrtrace.stream_processors.batch import US_PER_DAY

AS_OF = 1_626_886_800_000_000
NAMES = {"A": "Xã A", "B": "Xã B"}


def venue(vid: str, commune: str, over: int, peak: int, capacity: int, category: str = "karaoke") -> dict:
    return {
        "venue_id": vid,
        "name": f"Điểm {vid}",
        "category": category,
        "commune_code": commune,
        "capacity": capacity,
        "windows": max(over, 1),
        "over_capacity_windows": over,
        "peak_present": peak,
        "peak_window_us": AS_OF - US_PER_DAY,
        "arrivals": peak,
    }


def build(venues, hours=(), registered=(), visible=None, limit=20, days=7):  # type: ignore[no-untyped-def]
    return build_hotspots(
        venues, list(hours), list(registered), NAMES, visible, as_of_us=AS_OF, days=days, window_minutes=15, limit=limit
    )


def test_ranked_by_windows_over_then_fullness_then_peak_then_id() -> None:
    rows = [
        venue("V1", "A", 0, 9, 10),
        venue("V2", "A", 2, 3, 2),
        venue("V3", "B", 0, 12, 10),
        venue("V4", "B", 2, 5, 2),
        venue("V5", "A", 0, 12, 10),
    ]
    report = build(rows)
    assert [v.venue_id for v in report.venues] == ["V4", "V2", "V3", "V5", "V1"]
    assert report.venues[0].peak_ratio == 2.5 and report.venues[0].commune_name == "Xã B"
    assert [
        (c.commune_code, c.venues, c.venues_over_capacity, c.over_capacity_windows, c.peak_ratio)
        for c in report.communes
    ] == [("B", 2, 1, 2, 2.5), ("A", 3, 1, 2, 1.5)]


def test_unknown_capacity_has_no_ratio_and_ranks_after_a_known_one() -> None:
    report = build([venue("V1", "A", 0, 50, 0), venue("V2", "A", 0, 1, 10)])
    assert [(v.venue_id, v.peak_ratio) for v in report.venues] == [("V2", 0.1), ("V1", None)]
    assert report.communes[0].peak_ratio == 0.1


def test_the_mean_present_per_venue_and_hour() -> None:
    hours = [
        {
            "commune_code": "A",
            "category": "karaoke",
            "hour": 20,
            "arrivals": 3,
            "present_windows": 7,
            "peak_present": 3,
        },
        {
            "commune_code": "B",
            "category": "karaoke",
            "hour": 21,
            "arrivals": 4,
            "present_windows": 5,
            "peak_present": 3,
        },
    ]
    registered = [
        {"commune_code": "A", "category": "karaoke", "registered": 1},
        {"commune_code": "B", "category": "karaoke", "registered": 1},
        {"commune_code": "B", "category": "market", "registered": 4},
    ]
    (kar,) = build([], hours, registered).categories  # a category with no window is left out
    assert kar.registered == 2 and kar.mean_present[20] == round(7 * 15 / (60 * 7 * 2), 4) == 0.125
    assert kar.arrivals[21] == 4 and kar.peak_present[20] == 3 and kar.busiest_hour == 20
    (only_b,) = build([], hours, registered, visible={"B"}).categories
    assert only_b.registered == 1 and only_b.mean_present[20] == 0 and only_b.busiest_hour == 21
    assert only_b.mean_present[21] == round(5 * 15 / 420, 4)


venues_st = st.lists(
    st.builds(
        venue,
        st.text("abcdef", min_size=1, max_size=4),
        st.sampled_from(["A", "B", "C"]),
        st.integers(0, 50),
        st.integers(1, 300),
        st.integers(0, 100),
    ),
    max_size=30,
    unique_by=lambda r: r["venue_id"],
)


@given(venues_st, st.sets(st.sampled_from(["A", "B", "C"])) | st.none(), st.integers(1, 10))
def test_sorted_scoped_and_limited(rows: list[dict], visible: set[str] | None, limit: int) -> None:
    report = build(rows, visible=visible, limit=limit)
    inside = [r for r in rows if visible is None or r["commune_code"] in visible]
    assert report.venues_total == len(inside) and len(report.venues) == min(limit, len(inside))
    assert all(visible is None or v.commune_code in visible for v in report.venues)
    assert [rank_key(v) for v in report.venues] == sorted(rank_key(v) for v in report.venues)
    assert sum(c.over_capacity_windows for c in report.communes) == sum(r["over_capacity_windows"] for r in inside)
    if report.venues:  # the first is never beaten by one left out
        best = min((rank_key(v) for v in build(inside, limit=1000).venues), default=None)
        assert rank_key(report.venues[0]) == best
