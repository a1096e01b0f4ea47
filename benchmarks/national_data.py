"""Synthetic national visits for the trace benchmark: N visits straight into a store, in bulk.

Shaped like a wave's 21 days of QR check-ins, deterministic from a seed:
- communes of ~50 venues each (10 communes to a district); every commune has a market, a workplace, a
  bus route and a restaurant, the rest drawn from the 21 categories; popularity is skewed (Pareto
  weights times a category weight: markets and supermarkets draw the crowds);
- ~10 visits per person over the period (Poisson), ~200 per venue on average;
- people keep routines: 60 % have a workplace or school in their commune visited on weekdays, everyone
  has a usual market or shop; bus trips ride routes shared by the district at commute hours; other
  outings (restaurants, karaoke, weddings ...) go to their own commune or a neighbouring one;
- stays of 5 minutes to a few hours, by kind of visit, at the hours those visits happen.

Everything is generated as numpy columns per block of people and inserted with one INSERT ... SELECT
per block; pseudonyms (32 hex digits, like the pipeline's HMAC) and venue ids are formatted by the
store, not by Python.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

US = 1_000_000
HOUR_US = 3600 * US
DAY_US = 24 * HOUR_US
VN_OFFSET_US = 7 * HOUR_US  # local times below are in Vietnam (+07:00)
PERIOD_START_US = 1_626_652_800 * US  # 2021-07-19 00:00 UTC, a Monday of the July 2021 wave

# Kinds of visit (and the venue classes that serve them).
WORK, SHOP, TRANSPORT, OUTING = 0, 1, 2, 3
CATEGORIES = {  # category: (venue class, share of venues, popularity weight)
    "office": (WORK, 5, 1.0),
    "industrial_zone": (WORK, 1, 3.0),
    "factory": (WORK, 3, 2.0),
    "school": (WORK, 2, 2.0),
    "market": (SHOP, 2, 12.0),
    "mall_supermarket": (SHOP, 1, 10.0),
    "essential_shop": (SHOP, 8, 1.0),
    "public_transport": (TRANSPORT, 3, 1.0),
    "bus_station": (TRANSPORT, 1, 1.5),
    "restaurant": (OUTING, 8, 2.0),
    "bar": (OUTING, 1, 1.0),
    "nightclub": (OUTING, 0.3, 1.5),
    "karaoke": (OUTING, 2, 1.0),
    "massage_beauty": (OUTING, 2, 0.7),
    "gym": (OUTING, 1, 1.0),
    "meeting": (OUTING, 1, 1.0),
    "hospital": (OUTING, 0.5, 3.0),
    "funeral": (OUTING, 0.5, 1.0),
    "wedding": (OUTING, 1, 1.5),
    "tourism_entertainment": (OUTING, 1, 2.0),
    "religious_site": (OUTING, 1, 1.5),
}
CATEGORY_NAMES = list(CATEGORIES)
COMMUNE_CORE = ["market", "office", "public_transport", "restaurant"]  # every commune has one of each


@dataclass(frozen=True)
class NationalShape:
    rows: int
    days: int = 21
    visits_per_person: float = 10.0
    visits_per_venue: float = 200.0
    venues_per_commune: int = 50
    communes_per_district: int = 10
    seed: int = 2021

    @property
    def people(self) -> int:
        return max(1, round(self.rows / self.visits_per_person))

    @property
    def venues(self) -> int:
        return max(len(COMMUNE_CORE), round(self.rows / self.visits_per_venue))

    @property
    def communes(self) -> int:
        return max(1, self.venues // self.venues_per_commune)


@dataclass(frozen=True)
class VenueTable:
    commune: np.ndarray  # int32 per venue
    category: np.ndarray  # int8 index into CATEGORY_NAMES
    weight: np.ndarray  # float64 popularity
    klass: np.ndarray  # int8 venue class


def build_venues(shape: NationalShape) -> VenueTable:
    """Venues spread evenly over communes; each commune gets the core four, the rest drawn by share."""
    rng = np.random.default_rng([shape.seed, 0])
    n, c = shape.venues, shape.communes
    commune = (np.arange(n) % c).astype(np.int32)
    rank_in_commune = np.arange(n) // c
    shares = np.array([CATEGORIES[k][1] for k in CATEGORY_NAMES], dtype=np.float64)
    category = rng.choice(len(CATEGORY_NAMES), size=n, p=shares / shares.sum()).astype(np.int8)
    for i, name in enumerate(COMMUNE_CORE):
        category[rank_in_commune == i] = CATEGORY_NAMES.index(name)
    base = np.array([CATEGORIES[k][2] for k in CATEGORY_NAMES])[category]
    weight = base * (rng.pareto(1.5, size=n) + 1.0)
    klass = np.array([CATEGORIES[k][0] for k in CATEGORY_NAMES], dtype=np.int8)[category]
    return VenueTable(commune, category, weight, klass)


class VenuePicker:
    """Weighted draws of a venue of one class within a commune, vectorised (cumulative weights)."""

    def __init__(self, venues: VenueTable, klass: int, communes: int) -> None:
        ids = np.flatnonzero(venues.klass == klass)
        order = np.lexsort((ids, venues.commune[ids]))
        self.ids = ids[order]
        cum = np.cumsum(venues.weight[self.ids])
        self.cum = cum
        starts = np.searchsorted(venues.commune[self.ids], np.arange(communes), side="left")
        ends = np.searchsorted(venues.commune[self.ids], np.arange(communes), side="right")
        self.lo = np.where(starts > 0, cum[np.maximum(starts - 1, 0)], 0.0)
        self.hi = np.where(ends > 0, cum[np.maximum(ends - 1, 0)], 0.0)
        self.has = ends > starts

    def pick(self, communes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        lo, hi = self.lo[communes], self.hi[communes]
        u = lo + rng.random(len(communes)) * (hi - lo)
        idx = np.minimum(np.searchsorted(self.cum, u, side="right"), len(self.ids) - 1)
        return self.ids[idx]


def _district_neighbour(communes: np.ndarray, shape: NationalShape, rng: np.random.Generator) -> np.ndarray:
    """A random commune of the same district (districts are runs of `communes_per_district`)."""
    k = shape.communes_per_district
    first = (communes // k) * k
    size = np.minimum(k, shape.communes - first)
    return (first + rng.integers(0, 1 << 30, len(communes)) % size).astype(np.int32)


def visit_blocks(shape: NationalShape, venues: VenueTable, block_people: int = 1_000_000) -> Iterator[pa.Table]:
    """Visits as Arrow blocks of columns person (int64 id), venue (int64 id), start_us, end_us."""
    pickers = {k: VenuePicker(venues, k, shape.communes) for k in (WORK, SHOP, TRANSPORT, OUTING)}
    rng0 = np.random.default_rng([shape.seed, 1])
    counts = rng0.poisson(shape.visits_per_person, shape.people)
    total = np.cumsum(counts)
    cut = int(np.searchsorted(total, shape.rows))  # the people needed for exactly `rows` visits
    counts = counts[: cut + 1].copy()
    counts[-1] -= int(total[min(cut, len(total) - 1)] - shape.rows) if cut < len(total) else 0
    if cut >= len(total):  # Poisson fell short: the last person takes the rest
        counts[-1] += shape.rows - int(counts.sum())
    for block, first in enumerate(range(0, len(counts), block_people)):
        rng = np.random.default_rng([shape.seed, 2, block])
        people = np.arange(first, min(first + block_people, len(counts)), dtype=np.int64)
        yield _block(shape, venues, pickers, people, counts[people], rng)


def _block(
    shape: NationalShape,
    venues: VenueTable,
    pickers: dict[int, VenuePicker],
    people: np.ndarray,
    counts: np.ndarray,
    rng: np.random.Generator,
) -> pa.Table:
    n_people = len(people)
    home = (people * 2654435761 % shape.communes).astype(np.int32)  # spread people over communes
    worker = rng.random(n_people) < 0.6
    workplace = pickers[WORK].pick(home, rng)
    usual_shop = pickers[SHOP].pick(home, rng)

    person = np.repeat(people, counts)
    local = np.repeat(np.arange(n_people), counts)
    n = len(person)
    kind = rng.choice(4, size=n, p=[0.30, 0.35, 0.10, 0.25]).astype(np.int8)
    kind[(kind == WORK) & ~worker[local]] = SHOP
    commune = home[local]
    away = rng.random(n) < 0.15
    commune = np.where(away, _district_neighbour(commune, shape, rng), commune)

    venue = np.empty(n, dtype=np.int64)
    is_work = kind == WORK
    venue[is_work] = workplace[local[is_work]]
    is_shop = kind == SHOP
    usual = is_shop & (rng.random(n) < 0.7)
    venue[usual] = usual_shop[local[usual]]
    for k, mask in ((SHOP, is_shop & ~usual), (TRANSPORT, kind == TRANSPORT), (OUTING, kind == OUTING)):
        venue[mask] = pickers[k].pick(commune[mask], rng)

    day = rng.integers(0, shape.days, n)
    weekday = (day % 7) < 5
    day = np.where(is_work & ~weekday, day - (day % 7) + rng.integers(0, 5, n), day)
    day = np.minimum(day, shape.days - 1)
    hour, minutes = _time_of_day_and_stay(kind, rng)
    # Whole seconds, so the Parquet export (Unix seconds) holds exactly what the store holds.
    start = PERIOD_START_US - VN_OFFSET_US + day * DAY_US + (hour * 3600).astype(np.int64) * US
    end = start + minutes.astype(np.int64) * 60 * US
    return pa.table({"person": person, "venue": venue, "start_us": start, "end_us": end})


def _time_of_day_and_stay(kind: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Local start hour (fractional) and stay in minutes, by kind of visit."""
    n = len(kind)
    hour = np.empty(n)
    stay = np.empty(n)
    w = kind == WORK
    hour[w] = rng.normal(7.6, 0.6, w.sum())
    stay[w] = rng.uniform(120, 240, w.sum())
    s = kind == SHOP
    hour[s] = np.where(rng.random(s.sum()) < 0.6, rng.uniform(5.5, 10, s.sum()), rng.uniform(15, 19.5, s.sum()))
    stay[s] = np.clip(rng.lognormal(np.log(20), 0.6, s.sum()), 5, 120)
    t = kind == TRANSPORT
    hour[t] = np.where(rng.random(t.sum()) < 0.5, rng.normal(6.8, 0.5, t.sum()), rng.normal(17.0, 0.6, t.sum()))
    stay[t] = rng.uniform(15, 60, t.sum())
    o = kind == OUTING
    hour[o] = rng.uniform(9, 21.5, o.sum())
    stay[o] = np.clip(rng.lognormal(np.log(60), 0.5, o.sum()), 10, 240)
    return np.clip(hour, 0, 23.5), np.round(stay)


# Ids and pseudonyms are formatted by the store: Python never builds a string per row.
INSERT_BLOCK_SQL = """
INSERT INTO qrtrace.visits_by_venue (venue_id, person, start_us, end_us, closed_by, version, opened_by)
SELECT concat('SV', leftPad(toString(venue), 8, '0')),
       lower(hex(sipHash128(toString(person), {seed:String}))),
       start_us, end_us, toInt8(1), toUInt8(1), concat('syn', toString(row))
FROM Python(qrtrace_batch)
"""


def load_synthetic(store: object, shape: NationalShape, on_block: Callable[[int], None] | None = None) -> VenueTable:
    """Write the shape's visits (and its venues) into a chDB store; returns the venue table."""
    venues = build_venues(shape)
    _insert_venues(store, venues)
    written = 0
    for block in visit_blocks(shape, venues):
        rows = block.append_column("row", pa.array(np.arange(written, written + block.num_rows)))
        store.insert_select(INSERT_BLOCK_SQL, rows, {"seed": str(shape.seed)})  # type: ignore[attr-defined]
        written += block.num_rows
        if on_block:
            on_block(block.num_rows)
    return venues


def _insert_venues(store: object, venues: VenueTable) -> None:
    n = len(venues.commune)
    store.insert(  # type: ignore[attr-defined]
        "qrtrace.venues",
        {
            "venue_id": np.array([f"SV{i:08d}" for i in range(n)], dtype=object),
            "name": np.array([f"{CATEGORY_NAMES[c]} {i}" for i, c in enumerate(venues.category)], dtype=object),
            "category": np.array([CATEGORY_NAMES[c] for c in venues.category], dtype=object),
            "commune_code": np.array([f"S{c:05d}" for c in venues.commune], dtype=object),
            "capacity": np.full(n, 200, dtype=np.uint32),
            "registered_at_us": np.full(n, PERIOD_START_US, dtype=np.int64),
        },
    )
