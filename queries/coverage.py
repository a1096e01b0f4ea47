"""QR deployment coverage: per commune x venue category, and by overseeing office.

Registered venues, venues active (at least one scan) in the period, scans and people; communes and
venues with zero scans. Where a commune has imported its deployment census (queries/census.py), each cell also
has `required` (the census establishments that must deploy) and `required_registered` (those linked to a
registered venue), and the report lists the establishments not yet registered for the door-to-door visits;
a commune without a census keeps these at 0 with `census` False, and its `registered` is today's count.
The matrix always has every commune and every category, zeros included,
because a zero is exactly what a district office must see.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from qrtrace.domain.categories import load_categories, office_name
from qrtrace.sinks.clickhouse_sql import load_sql
from qrtrace.sinks.store import Store


@dataclass(frozen=True)
class CoverageCell:
    commune_code: str
    category: str
    registered: int
    active_venues: int
    scans: int
    people: int
    required: int = 0  # census establishments of this commune and category (0: none, or no census)
    required_registered: int = 0  # of those, linked to a registered venue


@dataclass(frozen=True)
class CommuneCoverage:
    commune_code: str
    name: str
    registered: int
    active_venues: int
    scans: int
    people: int
    required: int = 0
    required_registered: int = 0
    census: bool = False  # the commune has imported a census: `required` is its real denominator

    @property
    def active_share(self) -> float:
        return self.active_venues / self.registered if self.registered else 0.0

    @property
    def required_share(self) -> float:
        """Share of the census establishments registered (0.0 without a census)."""
        return self.required_registered / self.required if self.required else 0.0


@dataclass(frozen=True)
class OfficeCoverage:
    office: str
    office_name: str
    registered: int
    active_venues: int
    scans: int
    required: int = 0  # summed over the communes with a census
    required_registered: int = 0


@dataclass(frozen=True)
class SilentVenue:
    venue_id: str
    name: str
    category: str
    commune_code: str


@dataclass(frozen=True)
class UnregisteredEstablishment:
    """A census establishment not linked to a registered venue: a door to knock on."""

    establishment_id: str
    name: str
    address: str
    category: str
    commune_code: str


@dataclass(frozen=True)
class CoverageReport:
    as_of_us: int
    since_us: int
    lang: str
    cells: list[CoverageCell]
    communes: list[CommuneCoverage]
    offices: list[OfficeCoverage]
    zero_scan_communes: list[CommuneCoverage]
    silent_venues: list[SilentVenue]
    unregistered: list[UnregisteredEstablishment] = field(default_factory=list)
    census_communes: list[str] = field(default_factory=list)  # communes with a census, sorted

    def to_dict(self) -> dict:
        return asdict(self)


def _rows(result: dict[str, list]) -> list[dict]:
    keys = list(result)
    return [dict(zip(keys, values, strict=True)) for values in zip(*result.values(), strict=True)]


def coverage_report(store: Store, as_of_us: int, since_us: int, lang: str = "vi") -> CoverageReport:
    """Build the report for the period (since, as_of]; seven set-based queries."""
    params = {"since_us": since_us, "as_of_us": as_of_us}
    registered = {
        (r["commune_code"], r["category"]): r["registered"]
        for r in _rows(store.query(load_sql("qrtrace.queries", "coverage_registered")))
    }
    activity = {
        (r["commune_code"], r["category"]): r
        for r in _rows(store.query(load_sql("qrtrace.queries", "coverage_activity"), params))
    }
    communes = _rows(store.query(load_sql("qrtrace.queries", "communes")))
    silent = [
        SilentVenue(**r) for r in _rows(store.query(load_sql("qrtrace.queries", "coverage_silent_venues"), params))
    ]
    required = {
        (r["commune_code"], r["category"]): (r["required"], r["required_registered"])
        for r in _rows(store.query(load_sql("qrtrace.queries", "census_required")))
    }
    unregistered = [
        UnregisteredEstablishment(**r) for r in _rows(store.query(load_sql("qrtrace.queries", "census_unregistered")))
    ]
    census = sorted({k[0] for k in required})
    categories = load_categories()
    names = {c["commune_code"]: c["name_vi"] for c in communes}
    codes = sorted(set(names) | {k[0] for k in registered})
    cells = []
    for commune in codes:
        for category in categories:
            act = activity.get((commune, category), {})
            cells.append(
                CoverageCell(
                    commune,
                    category,
                    registered.get((commune, category), 0),
                    act.get("active_venues", 0),
                    act.get("scans", 0),
                    act.get("people", 0),
                    *required.get((commune, category), (0, 0)),
                )
            )
    people = {
        r["commune_code"]: r["people"]
        for r in _rows(store.query(load_sql("qrtrace.queries", "coverage_commune_people"), params))
    }
    per_commune = _per_commune(cells, names, people, set(census))
    return CoverageReport(
        as_of_us=as_of_us,
        since_us=since_us,
        lang=lang,
        cells=cells,
        communes=per_commune,
        offices=_per_office(cells, lang),
        zero_scan_communes=[c for c in per_commune if c.scans == 0],
        silent_venues=silent,
        unregistered=unregistered,
        census_communes=census,
    )


def _per_commune(cells: list[CoverageCell], names: dict[str, str], people: dict[str, int],
                 census: set[str]) -> list[CommuneCoverage]:  # fmt: skip
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for c in cells:
        t = totals[c.commune_code]
        t[0] += c.registered
        t[1] += c.active_venues
        t[2] += c.scans
        t[3] += c.required
        t[4] += c.required_registered
    return [
        CommuneCoverage(code, names.get(code, code), t[0], t[1], t[2], people.get(code, 0), t[3], t[4],
                        code in census)
        for code, t in totals.items()
    ]


def _per_office(cells: list[CoverageCell], lang: str) -> list[OfficeCoverage]:
    categories = load_categories()
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for c in cells:
        t = totals[categories[c.category].overseeing_office]
        t[0] += c.registered
        t[1] += c.active_venues
        t[2] += c.scans
        t[3] += c.required
        t[4] += c.required_registered
    return [OfficeCoverage(o, office_name(o, lang), *t) for o, t in sorted(totals.items())]


def daily_trend(rows: Mapping[str, list], visible: Collection[str] | None, first_day: int, days: int) -> list[dict]:
    """Active venues and scans per local day over the caller's communes; days without a scan are zeros."""
    per_day: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for day, commune, active, scans in zip(rows["day"], rows["commune_code"], rows["active_venues"], rows["scans"],
                                           strict=True):  # fmt: skip
        if visible is None or commune in visible:
            per_day[day][0] += active  # a venue is in one commune, so summing communes counts it once
            per_day[day][1] += scans
    out = []
    for day in range(first_day, first_day + days):
        local = datetime.fromtimestamp(day * 86_400, UTC).date()  # day numbers are already local days
        active, scans = per_day.get(day, (0, 0))
        out.append({"date": local.isoformat(), "active_venues": active, "scans": scans})
    return out
