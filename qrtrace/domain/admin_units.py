"""Administrative units: province > district > commune (xã / phường / thị trấn), with official codes."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from qrtrace.errors import InputError

COMMUNE_COLUMNS = (
    "commune_code",
    "name_vi",
    "unit_type",
    "district_code",
    "district_name_vi",
    "province_code",
    "province_name_vi",
)


@dataclass(frozen=True, slots=True)
class Commune:
    commune_code: str
    name_vi: str
    unit_type: str
    district_code: str
    district_name_vi: str
    province_code: str
    province_name_vi: str


def parse_communes(text: str, source: str) -> list[Commune]:
    """Parse a commune list in the GSO layout of `son_duong_communes.csv` (any district)."""
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in COMMUNE_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(f"{source}: the commune list lacks the column(s) {', '.join(missing)}.")
    communes = []
    for line_no, row in enumerate(reader, start=2):
        code = (row["commune_code"] or "").strip()
        if not code.isdigit():
            raise InputError(f"{source} line {line_no}: commune code {code!r} is not a numeric official code.")
        communes.append(Commune(**{c: (row[c] or "").strip() for c in COMMUNE_COLUMNS}))
    return communes


def load_communes(path: Path | None = None) -> list[Commune]:
    """Communes from `path`, or the packaged demo district (Sơn Dương, Tuyên Quang)."""
    if path is None:
        text = resources.files("qrtrace").joinpath("data/son_duong_communes.csv").read_text(encoding="utf-8")
        return parse_communes(text, "son_duong_communes.csv")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"Cannot read the commune list {path}: {exc.strerror}.") from exc
    return parse_communes(text, str(path))
