"""Scans from visits: check-ins, the check-outs people remember, repeat scans while a visit is open,
check-outs without a check-in, and per scan its mode and health declaration."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qrtrace.producers.simulator.model import _DAY_MS, _MIN_MS, SimulationConfig
from qrtrace.producers.simulator.visits import _Index, _span, _Visits

_DECLARATION_SHARE = 0.15

_MS_PRECISION_SHARE = 0.3  # scanners that send milliseconds

_PERSONAL_QR_SHARE = 0.25


@dataclass
class _Scans:
    person: np.ndarray
    venue: np.ndarray
    time: np.ndarray  # ms since the first simulated midnight
    direction: np.ndarray  # 0 in, 1 out
    mode: np.ndarray  # MODES index
    declaration: np.ndarray  # index into _declarations(), -1 for none
    zone: np.ndarray | None = None  # index into the venue's zones, -1 for none; None: no venue has zones


def _modes(ix: _Index, persons: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    u = rng.random(len(persons))
    manual = ix.manual_share[ix.role[persons]]
    return np.where(u < manual, 2, np.where(u < manual + _PERSONAL_QR_SHARE, 1, 0)).astype(np.int64)


def _make_scans(
    ix: _Index,
    config: SimulationConfig,
    visits: _Visits,
    seen: np.ndarray,
    day: int,
    rng: np.random.Generator,
    zone_counts: np.ndarray | None = None,
) -> _Scans:
    """Check-ins, the check-outs people remember, repeat scans, and a few check-outs with no check-in."""
    n = len(visits.person)
    factor = visits.no_checkout
    # Scale the per-activity factors so the overall missing share matches the config.
    p_missing = np.clip(config.missing_checkout_share * factor / factor.mean(), 0, 1) if n else factor
    has_out = rng.random(n) >= p_missing
    repeat = rng.random(n) < config.double_scan_share
    mode = _modes(ix, visits.person, rng)
    stay = visits.end - visits.start
    # The repeat comes 30 s to 5 min after the check-in, always before the check-out.
    latest = np.minimum(300_000, stay[repeat] // 2)
    repeat_at = visits.start[repeat] + 30_000 + (rng.random(len(latest)) * (latest - 30_000)).astype(np.int64)
    persons = [visits.person, visits.person[has_out], visits.person[repeat]]
    venues = [visits.venue, visits.venue[has_out], visits.venue[repeat]]
    times = [visits.start, visits.end[has_out], repeat_at]
    modes = [mode, mode[has_out], mode[repeat]]
    n_in = n + int(repeat.sum())
    n_genuine = n_in + int(has_out.sum())
    k = int(rng.binomial(n_genuine, config.unmatched_checkout_share)) if n_genuine else 0
    if k:
        person, venue, time = _unmatched_checkouts(ix, seen, k, day, rng)
        persons.append(person)
        venues.append(venue)
        times.append(time)
        modes.append(_modes(ix, person, rng))
    time = np.concatenate(times)
    direction = np.ones(len(time), dtype=np.int64)
    direction[:n] = 0
    direction[n + int(has_out.sum()) : n + int(has_out.sum()) + int(repeat.sum())] = 0
    whole = rng.random(len(time)) >= _MS_PRECISION_SHARE
    time[whole] -= time[whole] % 1000
    declaration = np.full(len(time), -1, dtype=np.int64)
    declares = (direction == 0) & (rng.random(len(time)) < _DECLARATION_SHARE)
    # Almost everyone answers 'no' to every question; a few tick a symptom or an F0 contact.
    variant = np.where(rng.random(len(time)) < 0.97, 0, rng.integers(1, 8, size=len(time)))
    declaration[declares] = variant[declares]
    zone = None
    if zone_counts is not None:  # a visit's section, from what it is (no draw: the other scans stay as they were)
        count = zone_counts[visits.venue]
        at = np.where(count > 0, (visits.person * 7919 + visits.start // 60_000) % np.maximum(count, 1), -1)
        zone = np.concatenate([at, at[has_out], at[repeat], np.full(len(time) - n_genuine, -1, np.int64)])
    return _Scans(np.concatenate(persons), np.concatenate(venues), time, direction, np.concatenate(modes), declaration,
                  zone)  # fmt: skip


def _unmatched_checkouts(
    ix: _Index, seen: np.ndarray, k: int, day: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Up to k check-outs by people never seen at that venue before (`seen` is sorted), so none is open."""
    n_venues = len(ix.venue_ids)
    people: list[np.ndarray] = []
    venues: list[np.ndarray] = []
    found = 0
    for _ in range(20):  # a tiny, saturated district may run out of fresh pairs
        if found >= k or not len(ix.standing):
            break
        person = rng.integers(0, len(ix.home), size=2 * k + 8)
        venue = ix.standing[rng.integers(0, len(ix.standing), size=2 * k + 8)]
        keys = person * n_venues + venue
        at = np.minimum(np.searchsorted(seen, keys), max(len(seen) - 1, 0))
        fresh = seen[at] != keys if len(seen) else np.ones(len(keys), dtype=bool)
        people.append(person[fresh])
        venues.append(venue[fresh])
        found += int(fresh.sum())
    person = np.concatenate([np.empty(0, dtype=np.int64), *people])[:k]
    venue = np.concatenate([np.empty(0, dtype=np.int64), *venues])[:k]
    time = day * _DAY_MS + np.round(_span(rng, 360, 1320, len(person)) * _MIN_MS).astype(np.int64)
    return person, venue, time
