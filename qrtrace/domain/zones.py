"""Venue zones: a market's sections, a wedding's halls, a factory's workshops. Each zone has its own signed
QR and poster; a check-in may name one (`zone`), and its visit keeps it.

A venue's zones are stored in `qrtrace.venues.zones` joined by ';' ('' = the venue has no zones). Pure.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

SEPARATOR = ";"
MAX_ZONE_LENGTH = 64  # characters; the check-in validator refuses a longer `zone` too
MAX_ZONES = 32  # per venue: a market's sections, not its stalls


def split_zones(text: str) -> tuple[str, ...]:
    """The zones stored as `text` ('' -> none). Trusts the store: validated when they were registered."""
    return tuple(z for z in text.split(SEPARATOR) if z) if text else ()


def join_zones(zones: Iterable[str]) -> str:
    return SEPARATOR.join(zones)


def zone_problem(zone: str) -> str | None:
    """Why `zone` cannot be a zone name (a sentence fragment), or None if it can."""
    if not zone:
        return "a zone name is empty"
    if len(zone) > MAX_ZONE_LENGTH:
        return f"zone {zone[:40]!r}... is longer than {MAX_ZONE_LENGTH} characters"
    if SEPARATOR in zone:
        return f"zone {zone!r} contains {SEPARATOR!r}, which separates zones"
    if zone != zone.strip() or any(unicodedata.category(c).startswith("C") for c in zone):
        return f"zone {zone!r} has leading or trailing spaces or control characters"
    return None


def parse_zones(text: str) -> tuple[str, ...]:
    """A ';'-separated zone list as a CSV cell holds it ('' -> no zones); ValueError with a sentence fragment
    for an empty name, a duplicate (letter case aside), a name too long or too many zones."""
    if not text.strip():
        return ()
    zones = tuple(unicodedata.normalize("NFC", z.strip()) for z in text.split(SEPARATOR))
    return check_zones(zones)


def check_zones(zones: tuple[str, ...]) -> tuple[str, ...]:
    """`zones` (NFC, as check-ins are compared) if they can be one venue's zones, else ValueError naming the
    first problem."""
    zones = tuple(unicodedata.normalize("NFC", z) for z in zones)
    seen: set[str] = set()
    for zone in zones:
        problem = zone_problem(zone)
        if problem:
            raise ValueError(problem)
        if zone.casefold() in seen:
            raise ValueError(f"zone {zone!r} appears twice")
        seen.add(zone.casefold())
    if len(zones) > MAX_ZONES:
        raise ValueError(f"a venue may have at most {MAX_ZONES} zones, got {len(zones)}")
    return zones
