"""Venues: what is registered, where, of which category, with which capacity."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from qrtrace.domain.categories import load_categories
from qrtrace.errors import InputError

VENUE_COLUMNS = ("venue_id", "name", "category", "commune_code", "capacity")


@dataclass(frozen=True, slots=True)
class Venue:
    venue_id: str
    name: str
    category: str
    commune_code: str
    capacity: int


def parse_venues(text: str, source: str, known_communes: set[str] | None = None) -> list[Venue]:
    """Parse `venue_id,name,category,commune_code,capacity` rows; any bad row rejects the whole file."""
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
        seen.add(venue_id)
        venues.append(Venue(venue_id, (row["name"] or "").strip() or venue_id, category, commune, capacity))
    return venues


def read_venues_csv(path: Path, known_communes: set[str] | None = None) -> list[Venue]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"Cannot read the venue file {path}: {exc.strerror}.") from exc
    return parse_venues(text, str(path), known_communes)
