"""District layout: standing venues with Vietnamese names, weddings and funerals (each a venue used on one
day), and a population with identifiers, phones and anchors (workplace, school, market stall)."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import numpy as np

from qrtrace.domain.admin_units import Commune
from qrtrace.domain.categories import load_categories
from qrtrace.domain.venues import Venue
from qrtrace.producers.simulator.model import (
    _VENUE_ID_RANGE,
    MARKET_ZONE_NAMES,
    ROLES,
    Gathering,
    Person,
    SimulatedDistrict,
    SimulationConfig,
    _communes,
    _is_town,
    _is_weekend,
)
from qrtrace.producers.simulator.tables import (
    _GIVEN_NAMES,
    _HAMLETS,
    _LANDMARKS,
    _MIDDLE_NAMES,
    _NAMES,
    _SCHOOL_LOCAL_SHARE,
    _STALL_LOCAL_SHARE,
    _SURNAMES,
    _TOWN_NAMES,
    _WORKPLACES,
    _capacity,
    _venue_table,
)
from qrtrace.producers.simulator.venue_choice import _Picker, _pickers

_ROLE_SHARES = (0.30, 0.30, 0.17, 0.13, 0.10)

_ID_KIND_SHARES = (0.75, 0.15, 0.10)  # phone, citizen id, personal-QR id
_PHONE_PREFIX_DIGITS = "35789"  # Vietnamese mobile numbers: 03x, 05x, 07x, 08x, 09x
_TUYEN_QUANG_CCCD_PREFIX = "008"


def build_district(config: SimulationConfig) -> SimulatedDistrict:
    """Lay out venues (with Vietnamese names), weddings/funerals and a population with routines."""
    rng = np.random.default_rng([config.seed, 0])
    communes = _communes(config)
    specs = _plan_venues(communes, config, rng)
    plans = _plan_gatherings(communes, config, rng)
    ids = rng.choice(_VENUE_ID_RANGE[1] - _VENUE_ID_RANGE[0], size=len(specs) + len(plans), replace=False)
    venue_ids = [f"VN{i + _VENUE_ID_RANGE[0]:07d}" for i in ids.tolist()]
    venues = [Venue(vid, *spec) for vid, spec in zip(venue_ids[: len(specs)], specs, strict=True)]
    gatherings: list[Gathering] = []
    for vid, (spec, (day, start_minute, guests)) in zip(venue_ids[len(specs) :], plans, strict=True):
        venues.append(Venue(vid, *spec))
        gatherings.append(Gathering(vid, day, start_minute, guests))
    people = _make_people(communes, venues, config, rng)
    if config.market_zones:  # after every draw: zones change nothing else about the district
        zones = MARKET_ZONE_NAMES[: config.market_zones]
        venues = [dataclasses.replace(v, zones=zones) if v.category == "market" else v for v in venues]
    return SimulatedDistrict(config, venues, people, gatherings)


def _venue_counts(commune: Commune, config: SimulationConfig, rng: np.random.Generator) -> dict[str, int]:
    if config.venues_per_commune is not None:
        return dict(config.venues_per_commune)
    column = 1 if _is_town(commune) else 0
    counts = {}
    for code, row in _venue_table().items():
        base, extra = row.counts[column]
        counts[code] = base + int(rng.integers(0, extra + 1)) if extra else base
    return counts


def _plan_venues(
    communes: list[Commune], config: SimulationConfig, rng: np.random.Generator
) -> list[tuple[str, str, str, int]]:
    """(name, category, commune_code, capacity) for every standing venue, commune by commune."""
    used: set[str] = set()
    route = 0
    specs: list[tuple[str, str, str, int]] = []
    for commune in communes:
        town = _is_town(commune)
        for category, count in _venue_counts(commune, config, rng).items():
            for k in range(count):
                if category == "public_transport":
                    route += 1
                    name = f"Xe buýt tuyến {route:02d}"
                else:
                    name = _venue_name(category, commune, k, town)
                specs.append((_unique(name, commune, used), category, commune.commune_code, _capacity(category)))
        if config.venues_per_commune is None:
            for category, name in _LANDMARKS.get(commune.name_vi, ()):
                specs.append((_unique(name, commune, used), category, commune.commune_code, _capacity(category)))
    return specs


def _venue_name(category: str, commune: Commune, k: int, town: bool) -> str:
    joined = (_TOWN_NAMES.get(category) if town else None) or _NAMES.get(category)
    pool = joined.split("|") if joined else [load_categories()[category].name_vi + " {c}"]
    template = pool[k % len(pool)]
    return template.format(c=commune.name_vi, u=commune.unit_type, d=commune.district_name_vi)


def _unique(name: str, commune: Commune, used: set[str]) -> str:
    candidate = name if name not in used else f"{name} ({commune.name_vi})"
    n = 2
    while candidate in used:
        candidate = f"{name} ({commune.name_vi}) {n}"
        n += 1
    used.add(candidate)
    return candidate


def _plan_gatherings(
    communes: list[Commune], config: SimulationConfig, rng: np.random.Generator
) -> list[tuple[tuple[str, str, str, int], tuple[int, int, int]]]:
    """Weddings (mostly at lunch, more at weekends) and funerals, each a venue used on one day."""
    plans = []
    for day in range(config.days):
        when = config.first_day + timedelta(days=day)
        weekend = _is_weekend(config, day)
        for commune in communes:
            for kind, rate in (
                ("wedding", config.weddings_per_commune_day * (2.0 if weekend else 0.7)),
                ("funeral", config.funerals_per_commune_day),
            ):
                for _ in range(int(rng.poisson(rate))):
                    plans.append(_gathering_plan(kind, commune, when, day, rng))
    return plans


def _gathering_plan(
    kind: str, commune: Commune, when: date, day: int, rng: np.random.Generator
) -> tuple[tuple[str, str, str, int], tuple[int, int, int]]:
    host = " ".join(
        (
            str(rng.choice(_SURNAMES)),
            str(rng.choice(_MIDDLE_NAMES[:-1])),  # hosts and the deceased here are men ('ông', 'cụ ông')
            str(rng.choice(_GIVEN_NAMES[:8])),
        )
    )
    hamlet = str(rng.choice(_HAMLETS))
    stamp = f"{when.day:02d}/{when.month:02d}"
    if kind == "wedding":
        name = f"Đám cưới nhà ông {host}, thôn {hamlet}, {commune.name_vi} ({stamp})"
        guests = int(np.clip(rng.lognormal(np.log(120), 0.5), 30, 400))
        start = int(rng.integers(600, 661))
    else:
        name = f"Đám tang cụ ông {host}, thôn {hamlet}, {commune.name_vi} ({stamp})"
        guests = int(np.clip(rng.lognormal(np.log(70), 0.5), 20, 250))
        start = int(rng.integers(480, 841))
    capacity = int(np.ceil(guests * 1.2 / 50.0) * 50)
    return (name, kind, commune.commune_code, capacity), (day, start, guests)


def _make_people(
    communes: list[Commune], venues: list[Venue], config: SimulationConfig, rng: np.random.Generator
) -> list[Person]:
    n = config.population
    weights = np.array([4.0 if _is_town(c) else 1.0 for c in communes]) * rng.lognormal(0, 0.3, len(communes))
    home = rng.choice(len(communes), size=n, p=weights / weights.sum())
    role = rng.choice(len(ROLES), size=n, p=_ROLE_SHARES)
    phones = _phone_numbers(rng, n)
    id_kind = rng.choice(3, size=n, p=_ID_KIND_SHARES)
    citizen = _citizen_ids(rng, int((id_kind == 1).sum()))
    qr = _personal_qr_ids(rng, int((id_kind == 2).sum()))
    ids = np.array(phones, dtype=object)
    ids[id_kind == 1] = citizen
    ids[id_kind == 2] = qr
    pickers = _pickers(venues, communes, config.seed)
    anchors = _assign_anchors(role, home, pickers, rng)
    codes = [c.commune_code for c in communes]
    return [
        Person(pid, phone, codes[h], ROLES[r], venues[a].venue_id if a >= 0 else None)
        for pid, phone, h, r, a in zip(
            ids.tolist(), phones, home.tolist(), role.tolist(), anchors.tolist(), strict=True
        )
    ]


def _phone_numbers(rng: np.random.Generator, n: int) -> list[str]:
    numbers = rng.choice(len(_PHONE_PREFIX_DIGITS) * 10**8, size=n, replace=False)
    return [f"0{_PHONE_PREFIX_DIGITS[x // 10**8]}{x % 10**8:08d}" for x in numbers.tolist()]


def _citizen_ids(rng: np.random.Generator, n: int) -> list[str]:
    # 12-digit CCCD: province code, a century/sex digit (0-3), birth year (2 digits), 6-digit serial.
    tails = rng.choice(4 * 10**8, size=n, replace=False)
    return [f"{_TUYEN_QUANG_CCCD_PREFIX}{x:09d}" for x in tails.tolist()]


def _personal_qr_ids(rng: np.random.Generator, n: int) -> list[str]:
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < n:
        raw = rng.bytes(8 * (n - len(ids)))
        for i in range(0, len(raw), 8):
            qr = f"QR-{raw[i : i + 8].hex()}"
            if qr not in seen:
                seen.add(qr)
                ids.append(qr)
    return ids


def _assign_anchors(
    role: np.ndarray, home: np.ndarray, pickers: dict[str, _Picker], rng: np.random.Generator
) -> np.ndarray:
    """Venue index of each person's workplace (workers), school (students) or stall (traders); -1 if none."""
    anchors = np.full(len(role), -1, dtype=np.int64)
    workers = np.flatnonzero(role == ROLES.index("worker"))
    places = [c for c in _WORKPLACES if c in pickers]
    if places and len(workers):
        w = np.array([_WORKPLACES[c][0] for c in places])
        kind = rng.choice(len(places), size=len(workers), p=w / w.sum())
        for j, category in enumerate(places):
            who = workers[kind == j]
            anchors[who] = pickers[category].pick(rng, home[who], _WORKPLACES[category][1])
    for role_name, category, local in (
        ("student", "school", _SCHOOL_LOCAL_SHARE),
        ("trader", "market", _STALL_LOCAL_SHARE),
    ):
        who = np.flatnonzero(role == ROLES.index(role_name))
        if category in pickers and len(who):
            anchors[who] = pickers[category].pick(rng, home[who], local)
    return anchors
