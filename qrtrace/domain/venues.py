"""Venues: what is registered, where, of which category, with which capacity."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from qrtrace.domain.categories import load_categories
from qrtrace.domain.zones import join_zones, parse_zones
from qrtrace.errors import InputError

VENUE_COLUMNS = ("venue_id", "name", "category", "commune_code", "capacity")
ZONES_COLUMN = "zones"  # optional: the venue's zones separated by ';' (qrtrace.domain.zones)
# A venue id goes into QR codes, file names, HTTP headers and URLs: ASCII letters and digits, then also
# '.', '_', ':' and '-', at most 64 characters (the API's VenueIn uses the same pattern).
VENUE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
_VENUE_ID = re.compile(VENUE_ID_PATTERN)


@dataclass(frozen=True, slots=True)
class Venue:
    venue_id: str
    name: str
    category: str
    commune_code: str
    capacity: int
    zones: tuple[str, ...] = ()  # the venue's zones (qrtrace.domain.zones); () = none


def venue_id_problem(venue_id: str) -> str | None:
    """Why `venue_id` cannot be a venue id (a sentence fragment), or None if it can."""
    if _VENUE_ID.fullmatch(venue_id):
        return None
    return (f"venue_id {venue_id[:80]!r} is not a venue id (ASCII letters and digits, then also . _ : -; "
            "at most 64 characters)")  # fmt: skip


def check_venue_ids(venues: Iterable[Venue]) -> None:
    """InputError naming the first venue whose id breaks the pattern: every path that creates a venue
    (CSV import, the API, the demo) registers through this check."""
    for venue in venues:
        problem = venue_id_problem(venue.venue_id)
        if problem:
            raise InputError(f"The {problem}; nothing was registered.")


def parse_venues(text: str, source: str, known_communes: set[str] | None = None) -> list[Venue]:
    """Parse `venue_id,name,category,commune_code,capacity` rows, with an optional `zones` column (';'-separated
    zone names); any bad row rejects the whole file."""
    categories = load_categories()
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    missing = [c for c in VENUE_COLUMNS if c not in header]
    if missing:
        raise InputError(f"{source}: the header must be {','.join(VENUE_COLUMNS)}; missing {', '.join(missing)}.")
    venues: list[Venue] = []
    seen: set[str] = set()
    for line_no, row in enumerate(reader, start=2):
        venue_id = (row["venue_id"] or "").strip()
        category = (row["category"] or "").strip()
        commune = (row["commune_code"] or "").strip()
        where = f"{source} line {line_no}"
        if not venue_id:
            raise InputError(f"{where}: venue_id is empty.")
        if problem := venue_id_problem(venue_id):
            raise InputError(f"{where}: {problem}.")
        if venue_id in seen:
            raise InputError(f"{where}: venue {venue_id} appears twice in the file.")
        if category not in categories:
            raise InputError(
                f"{where}: unknown venue category {category!r}; expected one of {', '.join(sorted(categories))}."
            )
        if known_communes is not None and commune not in known_communes:
            raise InputError(f"{where}: commune code {commune!r} is not a registered commune.")
        try:
            capacity = int((row["capacity"] or "").strip())
        except ValueError:
            raise InputError(f"{where}: capacity {row['capacity']!r} is not a whole number.") from None
        if capacity <= 0:
            raise InputError(f"{where}: capacity must be positive, got {capacity}.")
        try:
            zones = parse_zones(row.get(ZONES_COLUMN) or "")
        except ValueError as exc:
            raise InputError(f"{where}: {exc}.") from None
        seen.add(venue_id)
        venues.append(Venue(venue_id, (row["name"] or "").strip() or venue_id, category, commune, capacity, zones))
    return venues


def read_venues_csv(path: Path, known_communes: set[str] | None = None) -> list[Venue]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"Cannot read the venue file {path}: {exc.strerror}.") from exc
    return parse_venues(text, str(path), known_communes)


def write_venues_csv(path: Path, venues: Iterable[Venue]) -> None:
    """The venue file `read_venues_csv` and `qrtrace venues import` read (header VENUE_COLUMNS, and `zones`
    when any venue has zones)."""
    venues = list(venues)
    zoned = any(v.zones for v in venues)
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow((*VENUE_COLUMNS, ZONES_COLUMN) if zoned else VENUE_COLUMNS)
        out.writerows([*(getattr(v, c) for c in VENUE_COLUMNS), *([join_zones(v.zones)] if zoned else [])]
                      for v in venues)  # fmt: skip


def keep_registered_zones(path: Path, venues: list[Venue], registered: Iterable[Venue]) -> list[Venue]:
    """`venues` read from `path`; when the file has no zones column, each keeps the zones it has registered
    (added through the API, or by an earlier file), so re-importing an older file never drops them."""
    import dataclasses

    header = next(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()[:1]), [])
    if ZONES_COLUMN in header:
        return venues
    known = {v.venue_id: v.zones for v in registered}
    return [dataclasses.replace(v, zones=known[v.venue_id]) if known.get(v.venue_id) else v for v in venues]
