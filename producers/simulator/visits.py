"""Day-by-day visits: the district as arrays (`_Index`, built once per run) and, per simulated day, who
goes where in each of the four time slots (gatherings first, then one activity or none per person and slot)."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from qrtrace.producers.simulator.model import (
    _DAY_MS,
    _MIN_MS,
    GATHERING_CATEGORIES,
    ROLES,
    SimulatedDistrict,
    SimulationConfig,
    _communes,
    _is_weekend,
)
from qrtrace.producers.simulator.tables import _ACTIVITIES, _ANCHOR, _BUS, _SLOTS, _Activity, _routine_tables
from qrtrace.producers.simulator.venue_choice import _Picker, _pickers

_BUS_WAIT_MIN = (3, 12)
_BUS_STATION_NO_CHECKOUT = 3.0  # nobody scans out of a shelter
_GATHERING_ARRIVAL_MIN = 60  # guests arrive within an hour of the start
_GATHERING_STAY = MappingProxyType({"wedding": (45, 180), "funeral": (20, 120)})
_GATHERING_NO_CHECKOUT = 2.0
_GATHERING_LOCAL_SHARE = 0.85

_MANUAL_SHARE = MappingProxyType({"retired": 0.25, "farmer": 0.12})
_MANUAL_SHARE_DEFAULT = 0.05


@dataclass(frozen=True, slots=True)
class _GatheringIx:
    day: int
    venue: int
    commune: int
    start_minute: int
    guests: int
    category: str


@dataclass(frozen=True)
class _Index:
    """Array views of a district used by the generator (built once per run)."""

    home: np.ndarray  # commune position per person
    role: np.ndarray  # ROLES index per person
    anchor: np.ndarray  # venue index per person, -1 if none
    person_ids: np.ndarray  # object array of bytes
    venue_ids: np.ndarray  # object array of bytes
    pickers: dict[str, _Picker]
    residents: list[np.ndarray]  # person indices per commune position
    gatherings: list[_GatheringIx]
    standing: np.ndarray  # venue indices that are not weddings/funerals
    weekday: np.ndarray  # (roles, activities) chance
    weekend: np.ndarray
    activity_possible: np.ndarray  # per activity: its venues exist
    manual_share: np.ndarray  # per role

    @classmethod
    def build(cls, district: SimulatedDistrict) -> _Index:
        communes = _communes(district.config)
        position = {c.commune_code: i for i, c in enumerate(communes)}
        venue_pos = {v.venue_id: i for i, v in enumerate(district.venues)}
        people = district.people
        home = np.array([position.get(p.home_commune, 0) for p in people], dtype=np.int64)
        role = np.array([ROLES.index(p.role) if p.role in ROLES else 1 for p in people], dtype=np.int64)
        anchor = np.array([venue_pos.get(p.anchor_venue or "", -1) for p in people], dtype=np.int64)
        pickers = _pickers(district.venues, communes, district.config.seed)
        order = np.argsort(home, kind="stable")
        bounds = np.searchsorted(home[order], np.arange(len(communes) + 1))
        residents = [order[bounds[i] : bounds[i + 1]] for i in range(len(communes))]
        gatherings = [
            _GatheringIx(
                g.day,
                venue_pos[g.venue_id],
                position.get(district.venues[venue_pos[g.venue_id]].commune_code, 0),
                g.start_minute,
                g.guests,
                district.venues[venue_pos[g.venue_id]].category,
            )
            for g in district.gatherings
            if g.venue_id in venue_pos
        ]
        weekday, weekend = _routine_tables()
        possible = np.array([_activity_possible(a, pickers) for a in _ACTIVITIES], dtype=np.float64)
        manual = np.array([_MANUAL_SHARE.get(r, _MANUAL_SHARE_DEFAULT) for r in ROLES])
        return cls(
            home=home,
            role=role,
            anchor=anchor,
            person_ids=_objects([p.person_id.encode() for p in people]),
            venue_ids=_objects([v.venue_id.encode() for v in district.venues]),
            pickers=pickers,
            residents=residents,
            gatherings=gatherings,
            standing=np.array(
                [i for i, v in enumerate(district.venues) if v.category not in GATHERING_CATEGORIES],
                dtype=np.int64,
            ),
            weekday=weekday,
            weekend=weekend,
            activity_possible=possible,
            manual_share=manual,
        )


def _activity_possible(activity: _Activity, pickers: dict[str, _Picker]) -> bool:
    if activity.category == _BUS:
        return "public_transport" in pickers
    return activity.category == _ANCHOR or activity.category in pickers


@dataclass
class _Visits:
    person: np.ndarray
    venue: np.ndarray
    start: np.ndarray  # ms since the first simulated midnight
    end: np.ndarray
    no_checkout: np.ndarray  # relative chance of never scanning out

    @classmethod
    def concat(cls, parts: list[_Visits]) -> _Visits:
        if not parts:
            return cls(*(np.empty(0, dtype=np.int64) for _ in range(4)), np.empty(0))
        return cls(
            np.concatenate([p.person for p in parts]),
            np.concatenate([p.venue for p in parts]),
            np.concatenate([p.start for p in parts]),
            np.concatenate([p.end for p in parts]),
            np.concatenate([p.no_checkout for p in parts]),
        )


def _span(rng: np.random.Generator, lo: float, hi: float, n: int, skew: float = 1.0) -> np.ndarray:
    """n values in [lo, hi); skew > 1 favours the low end (most stays are short)."""
    return lo + (hi - lo) * rng.random(n) ** skew


def _visits(
    person: np.ndarray, venue: np.ndarray, start_min: np.ndarray, stay_min: np.ndarray, day: int, f: float
) -> _Visits:
    start = day * _DAY_MS + np.round(start_min * _MIN_MS).astype(np.int64)
    end = start + np.round(stay_min * _MIN_MS).astype(np.int64)
    return _Visits(person.astype(np.int64), venue.astype(np.int64), start, end, np.full(len(person), f))


def _activity_visits(
    ix: _Index, activity: _Activity, persons: np.ndarray, day: int, rng: np.random.Generator
) -> list[_Visits]:
    if activity.category == _ANCHOR:
        persons = persons[ix.anchor[persons] >= 0]
        venues = ix.anchor[persons]
    elif activity.category == _BUS:
        return _bus_trips(ix, activity, persons, day, rng)
    else:
        venues = ix.pickers[activity.category].pick(rng, ix.home[persons], activity.local_share)
    n = len(persons)
    start = _span(rng, *activity.window, n)
    stay = _span(rng, *activity.stay, n, skew=1.7)
    return [_visits(persons, venues, start, stay, day, activity.no_checkout)]


def _bus_trips(
    ix: _Index, activity: _Activity, persons: np.ndarray, day: int, rng: np.random.Generator
) -> list[_Visits]:
    """A wait at the home commune's shelter, then a 30-90 minute ride on a public vehicle."""
    n = len(persons)
    t0 = _span(rng, *activity.window, n)
    wait = _span(rng, *_BUS_WAIT_MIN, n)
    ride = _span(rng, *activity.stay, n)
    vehicle = ix.pickers["public_transport"].pick(rng, ix.home[persons], activity.local_share)
    parts = [_visits(persons, vehicle, t0 + wait, ride, day, activity.no_checkout)]
    if "bus_station" in ix.pickers:
        shelter = ix.pickers["bus_station"].pick(rng, ix.home[persons], 0.9)
        parts.append(_visits(persons, shelter, t0, wait, day, _BUS_STATION_NO_CHECKOUT))
    return parts


def _gathering_visits(ix: _Index, day: int, rng: np.random.Generator) -> _Visits:
    """Guests, mostly from the host commune and each at one gathering a day, arrive within the hour."""
    busy = np.zeros(len(ix.home), dtype=bool)
    parts = []
    for g in ix.gatherings:
        if g.day != day:
            continue
        neighbours = ix.residents[g.commune][~busy[ix.residents[g.commune]]]
        k_local = min(len(neighbours), round(g.guests * _GATHERING_LOCAL_SHARE))
        local = rng.choice(neighbours, size=k_local, replace=False)
        busy[local] = True
        free = np.flatnonzero(~busy)
        others = rng.choice(free, size=min(len(free), g.guests - k_local), replace=False)
        busy[others] = True
        guests = np.sort(np.concatenate([local, others]))
        arrive = g.start_minute + _span(rng, 0, _GATHERING_ARRIVAL_MIN, len(guests), skew=1.5)
        stay = _span(rng, *_GATHERING_STAY[g.category], len(guests), skew=1.3)
        venue = np.full(len(guests), g.venue)
        parts.append(_visits(guests, venue, arrive, stay, day, _GATHERING_NO_CHECKOUT))
    return _Visits.concat(parts)


def _day_visits(ix: _Index, config: SimulationConfig, day: int, rng: np.random.Generator) -> _Visits:
    """Every visit of one day: gatherings first, then one activity (or none) per person and slot."""
    n = len(ix.home)
    table = ix.weekend if _is_weekend(config, day) else ix.weekday
    gatherings = _gathering_visits(ix, day, rng)
    at_gathering = np.zeros(n, dtype=bool)
    at_gathering[gatherings.person] = True
    parts = [gatherings]
    for slot in range(_SLOTS):
        acts = [i for i, a in enumerate(_ACTIVITIES) if a.slot == slot]
        cum = np.cumsum(table[:, acts], axis=1)[ix.role]
        choice = (rng.random(n)[:, None] >= cum).sum(axis=1)  # == len(acts): nothing in this slot
        if slot == 1:
            choice[at_gathering] = len(acts)  # the wedding or funeral replaces the day's activity
        for j, a in enumerate(acts):
            persons = np.flatnonzero(choice == j)
            if len(persons) and ix.activity_possible[a]:
                parts.extend(_activity_visits(ix, _ACTIVITIES[a], persons, day, rng))
    return _Visits.concat(parts)


def _objects(items: list[bytes]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out
