"""The 21 venue categories of the July 2021 directive, with names, overseeing office and default dwell."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True, slots=True)
class VenueCategory:
    code: str
    group: str
    name_vi: str
    name_en: str
    overseeing_office: str
    default_dwell_minutes: int

    def name(self, lang: str = "vi") -> str:
        return self.name_en if lang == "en" else self.name_vi


# Labels for the offices that oversee categories (reports group by them).
OFFICE_NAMES: dict[str, tuple[str, str]] = {
    "commune_committee": ("UBND xã, thị trấn", "Commune people's committee"),
    "health_office": ("Phòng Y tế", "Health office"),
    "education_and_labour_offices": ("Phòng GD&ĐT, Phòng LĐ-TB&XH", "Education and labour offices"),
    "economy_and_infrastructure_office": ("Phòng Kinh tế và Hạ tầng", "Economy and infrastructure office"),
}


def office_name(code: str, lang: str = "vi") -> str:
    vi, en = OFFICE_NAMES.get(code, (code, code))
    return en if lang == "en" else vi


@cache
def load_categories() -> dict[str, VenueCategory]:
    """Categories keyed by code, from the packaged copy of `shared/domain/venue_categories.csv`."""
    text = resources.files("qrtrace").joinpath("data/venue_categories.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines())
    return {
        r["code"]: VenueCategory(
            code=r["code"],
            group=r["group"],
            name_vi=r["name_vi"],
            name_en=r["name_en"],
            overseeing_office=r["overseeing_office"],
            default_dwell_minutes=int(r["default_dwell_minutes"]),
        )
        for r in rows
    }
