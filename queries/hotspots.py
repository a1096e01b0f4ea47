"""Crowding hotspots: where and when venues fill up, from the occupancy windows the processors keep.

A window is one venue's tumbling occupancy window (QRTRACE_OCCUPANCY_WINDOW_MINUTES, 15 by default;
stream_processors/occupancy.py): `present` people overlapped it, `arrivals` checked in during it, and it is
over capacity when present > the venue's capacity (a capacity of 0 means unknown: never over). For the
period of `days` days up to `as_of` the report gives
- venues ranked by windows over capacity, then by peak / capacity, then by peak: the peak (most people
  present in one window), the earliest window that reached it, the registered capacity;
- per venue category and local hour of day: arrivals, the mean number of people present at a venue of the
  category (person-minutes / (60 x days x the category's registered venues)) and the highest peak;
- per commune: venues over capacity at least once, windows over capacity, the highest peak / capacity.

Two set-based queries (queries/sql/hotspots_*.sql) and the registered venues per commune x category; the
ranking and the scope (the communes a caller may see) are the pure `build_hotspots`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass

from qrtrace.domain.categories import load_categories
from qrtrace.sinks.clickhouse_sql import load_sql
from qrtrace.sinks.store import Store
from qrtrace.stream_processors.batch import US_PER_DAY

HOURS = 24


@dataclass(frozen=True)
class VenueHotspot:
    venue_id: str
    name: str
    category: str
    category_name: str
    commune_code: str
    commune_name: str
    capacity: int
    windows: int  # windows with someone present
    over_capacity_windows: int
    peak_present: int
    peak_ratio: float | None  # peak / capacity; None when the capacity is unknown (0)
    peak_window_us: int  # the earliest window that reached the peak
    arrivals: int


@dataclass(frozen=True)
class CategoryHours:
    category: str
    name: str
    registered: int  # venues of the category in the area (the mean's denominator)
    arrivals: list[int]  # per local hour of day, 0..23
    mean_present: list[float]
    peak_present: list[int]
    busiest_hour: int  # the hour with the highest mean present (ties: the earlier hour)


@dataclass(frozen=True)
class CommuneHotspots:
    commune_code: str
    name: str
    venues: int  # venues with someone present in the period
    venues_over_capacity: int
    over_capacity_windows: int
    peak_ratio: float | None


@dataclass(frozen=True)
class HotspotReport:
    as_of_us: int
    since_us: int
    days: int
    window_minutes: int
    lang: str
    venues_total: int  # venues with windows in the area, before the limit
    venues: list[VenueHotspot]
    categories: list[CategoryHours]
    communes: list[CommuneHotspots]

    def to_dict(self) -> dict:
        return asdict(self)


def _rows(result: Mapping[str, Sequence]) -> list[dict]:
    keys = list(result)
    return [dict(zip(keys, values, strict=True)) for values in zip(*result.values(), strict=True)]


def _ratio(peak: int, capacity: int) -> float | None:
    return round(peak / capacity, 4) if capacity > 0 else None


def rank_key(v: VenueHotspot) -> tuple:
    """Most windows over capacity first, then the fuller peak, then more people, then the venue id."""
    return (-v.over_capacity_windows, -(v.peak_ratio or 0.0), -v.peak_present, v.venue_id)


def build_hotspots(
    venue_rows: Sequence[Mapping],
    hour_rows: Sequence[Mapping],
    registered_rows: Sequence[Mapping],
    commune_names: Mapping[str, str],
    visible: Collection[str] | None,
    *,
    as_of_us: int,
    days: int,
    window_minutes: int,
    limit: int,
    lang: str = "vi",
) -> HotspotReport:
    """The report from the query rows, narrowed to `visible` communes (None: all). Pure."""
    cats = load_categories()

    def shown(commune: str) -> bool:
        return visible is None or commune in visible

    def cat_name(code: str) -> str:
        return cats[code].name(lang) if code in cats else code

    venues = sorted(
        (_venue(r, cat_name(r["category"]), commune_names) for r in venue_rows if shown(r["commune_code"])),
        key=rank_key,
    )
    return HotspotReport(
        as_of_us=as_of_us,
        since_us=as_of_us - days * US_PER_DAY,
        days=days,
        window_minutes=window_minutes,
        lang=lang,
        venues_total=len(venues),
        venues=venues[:limit],
        categories=_categories(hour_rows, registered_rows, shown, cat_name, days, window_minutes),
        communes=_communes(venues),
    )


def _venue(r: Mapping, category_name: str, commune_names: Mapping[str, str]) -> VenueHotspot:
    peak, capacity = int(r["peak_present"]), int(r["capacity"])
    return VenueHotspot(
        venue_id=r["venue_id"],
        name=r["name"],
        category=r["category"],
        category_name=category_name,
        commune_code=r["commune_code"],
        commune_name=commune_names.get(r["commune_code"], r["commune_code"]),
        capacity=capacity,
        windows=int(r["windows"]),
        over_capacity_windows=int(r["over_capacity_windows"]),
        peak_present=peak,
        peak_ratio=_ratio(peak, capacity),
        peak_window_us=int(r["peak_window_us"]),
        arrivals=int(r["arrivals"]),
    )


def _categories(hour_rows, registered_rows, shown, cat_name, days: int, window_minutes: int) -> list[CategoryHours]:  # type: ignore[no-untyped-def]
    registered: dict[str, int] = defaultdict(int)
    for r in registered_rows:
        if shown(r["commune_code"]):
            registered[r["category"]] += int(r["registered"])
    arrivals: dict[str, list[int]] = defaultdict(lambda: [0] * HOURS)
    person_windows: dict[str, list[int]] = defaultdict(lambda: [0] * HOURS)
    peak: dict[str, list[int]] = defaultdict(lambda: [0] * HOURS)
    for r in hour_rows:
        if not shown(r["commune_code"]):
            continue
        c, h = r["category"], int(r["hour"])
        arrivals[c][h] += int(r["arrivals"])
        person_windows[c][h] += int(r["present_windows"])
        peak[c][h] = max(peak[c][h], int(r["peak_present"]))
    out = []
    for c in person_windows:
        if not any(person_windows[c]) and not any(arrivals[c]):
            continue
        venues = max(registered.get(c, 0), 1)  # a venue with windows is registered; never divide by zero
        mean = [round(n * window_minutes / (60 * days * venues), 4) for n in person_windows[c]]
        busiest = max(range(HOURS), key=lambda h: (mean[h], -h))
        out.append(CategoryHours(c, cat_name(c), registered.get(c, 0), arrivals[c], mean, peak[c], busiest))
    return sorted(out, key=lambda k: (-max(k.mean_present), -sum(k.arrivals), k.category))


def _communes(venues: Sequence[VenueHotspot]) -> list[CommuneHotspots]:
    by_commune: dict[str, list[VenueHotspot]] = defaultdict(list)
    for v in venues:
        by_commune[v.commune_code].append(v)
    out = []
    for code, vs in by_commune.items():
        ratios = [v.peak_ratio for v in vs if v.peak_ratio is not None]
        out.append(CommuneHotspots(
            code, vs[0].commune_name, len(vs), sum(1 for v in vs if v.over_capacity_windows),
            sum(v.over_capacity_windows for v in vs), max(ratios) if ratios else None,
        ))  # fmt: skip
    return sorted(out, key=lambda c: (-c.over_capacity_windows, -(c.peak_ratio or 0.0), c.commune_code))


def hotspot_report(
    store: Store,
    as_of_us: int,
    days: int,
    *,
    window_minutes: int,
    offset_us: int,
    visible: Collection[str] | None = None,
    limit: int = 20,
    lang: str = "vi",
) -> HotspotReport:
    """Read the period's windows (two queries, plus the registered venues and commune names) and rank them."""
    params = {"since_us": as_of_us - days * US_PER_DAY, "as_of_us": as_of_us}
    venue_rows = _rows(store.query(load_sql("qrtrace.queries", "hotspots_venues"), params))
    hour_rows = _rows(store.query(load_sql("qrtrace.queries", "hotspots_hours"), {**params, "offset_us": offset_us}))
    registered = _rows(store.query(load_sql("qrtrace.queries", "coverage_registered")))
    names = {r["commune_code"]: r["name_vi"] for r in _rows(store.query(load_sql("qrtrace.queries", "communes")))}
    return build_hotspots(venue_rows, hour_rows, registered, names, visible, as_of_us=as_of_us, days=days,
                          window_minutes=window_minutes, limit=limit, lang=lang)  # fmt: skip
