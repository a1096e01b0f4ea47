"""Pure transforms behind the API: coverage for one caller's area, the daily trend, trace documents with
or without identities, call-list rows, and the operators' metrics. No I/O: the service feeds them rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta, timezone

from qrtrace.domain.categories import load_categories, office_name
from qrtrace.queries.coverage import CoverageReport

US_PER_DAY = 86_400_000_000
VIETNAM = timezone(timedelta(hours=7), "ICT")


# -- coverage -------------------------------------------------------------------------------------------


def coverage_view(
    day: CoverageReport,
    week: CoverageReport,
    visible: Collection[str] | None,
    lang: str,
) -> dict:
    """The commune x category matrix with 24 h and 7-day activity, restricted to `visible` communes
    (None: all), with totals per commune and per overseeing office, zero-scan communes and silent venues."""
    categories = load_categories()
    weekly = {(c.commune_code, c.category): c for c in week.cells}
    names = {c.commune_code: c.name for c in day.communes}

    def shown(code: str) -> bool:
        return visible is None or code in visible

    cells = []
    for c in day.cells:
        if not shown(c.commune_code):
            continue
        w = weekly.get((c.commune_code, c.category))
        cells.append({
            "commune_code": c.commune_code,
            "commune_name": names.get(c.commune_code, c.commune_code),
            "category": c.category,
            "category_name": categories[c.category].name(lang),
            "office": categories[c.category].overseeing_office,
            "registered": c.registered,
            "active_24h": c.active_venues,
            "active_7d": w.active_venues if w else 0,
            "scans_24h": c.scans,
            "people_24h": c.people,
            "scans_7d": w.scans if w else 0,
            "required": c.required,
            "required_registered": c.required_registered,
        })  # fmt: skip
    people = {c.commune_code: c.people for c in day.communes}
    census = set(day.census_communes)
    communes = _totals(cells, "commune_code")
    for row in communes:
        row["commune_name"] = names.get(row["commune_code"], row["commune_code"])
        row["people_24h"] = people.get(row["commune_code"], 0)  # distinct people: not a sum of categories
        row["census"] = row["commune_code"] in census  # False: no census, `required` is 0 and means nothing
    offices = _totals(cells, "office")
    for row in offices:
        row["office_name"] = office_name(row["office"], lang)
    return {
        "as_of_us": day.as_of_us,
        "cells": cells,
        "communes": communes,
        "offices": offices,
        "zero_scan_communes": [r for r in communes if r["scans_24h"] == 0],
        "silent_venues": [
            {"venue_id": v.venue_id, "name": v.name, "category": v.category,
             "category_name": categories[v.category].name(lang), "commune_code": v.commune_code,
             "commune_name": names.get(v.commune_code, v.commune_code)}
            for v in day.silent_venues if shown(v.commune_code)
        ],
        "census_communes": [c for c in day.census_communes if shown(c)],
        "unregistered": [
            {"establishment_id": e.establishment_id, "name": e.name, "address": e.address, "category": e.category,
             "category_name": categories[e.category].name(lang), "commune_code": e.commune_code,
             "commune_name": names.get(e.commune_code, e.commune_code)}
            for e in day.unregistered if shown(e.commune_code)
        ],
    }


_SUMMED = ("registered", "active_24h", "active_7d", "scans_24h", "scans_7d", "required", "required_registered")


def _totals(cells: list[dict], key: str) -> list[dict]:
    totals: dict[str, dict] = {}
    for c in cells:
        row = totals.setdefault(c[key], {key: c[key], **dict.fromkeys(_SUMMED, 0)})
        for k in _SUMMED:
            row[k] += c[k]
    for row in totals.values():
        row["active_share_7d"] = round(row["active_7d"] / row["registered"], 4) if row["registered"] else 0.0
        row["required_share"] = round(row["required_registered"] / row["required"], 4) if row["required"] else 0.0
    return [totals[k] for k in sorted(totals)]


# -- trace documents --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """How one pseudonym is shown: the identifier and phone number when re-identified, else the pseudonym."""

    shown_as: str
    contact: str | None


def pseudonyms_in(docs: Iterable[dict]) -> set[str]:
    """Every pseudonym a stored (pseudonymous) trace document names."""
    found: set[str] = set()
    for doc in docs:
        found.add(doc["case"])
        for c in doc["contacts"]:
            found.add(c["person_id"])
            found.update(e["source_person_id"] for e in c["exposures"])
    return found


def show_people(docs: list[dict], people: Mapping[str, Person] | None) -> list[dict]:
    """Copies of `docs` with pseudonyms replaced by identifiers (None: keep pseudonyms, no contacts)."""

    def shown(p: str) -> str:
        return people[p].shown_as if people and p in people else p

    out = []
    for doc in docs:
        contacts = []
        for c in doc["contacts"]:
            person = c["person_id"]
            contacts.append({
                **c,
                "person_id": shown(person),
                "contact": people[person].contact if people and person in people else None,
                "exposures": [{**e, "source_person_id": shown(e["source_person_id"])} for e in c["exposures"]],
            })  # fmt: skip
        out.append({**doc, "case": shown(doc["case"]), "contacts": contacts, "reidentified": people is not None})
    return out


CALL_LIST_COLUMNS = ("case_id", "case", "hop", "person_id", "phone", "first_exposure", "venue_id", "start", "end",
                     "overlap_minutes", "source_person_id", "source_hop", "risk", "exposure_risk")  # fmt: skip


def call_list_rows(docs: list[dict]) -> list[tuple]:
    """One row per exposure, ordered by hop then first exposure: the list health staff call through."""
    rows = []
    for doc in docs:
        for c in doc["contacts"]:
            for e in c["exposures"]:
                rows.append((doc["case_id"], doc["case"], c["hop"], c["person_id"], c.get("contact") or "",
                             c["first_exposure"], e["venue_id"], e["start"], e["end"], e["overlap_minutes"],
                             e["source_person_id"], e["source_hop"], c.get("risk", ""), e.get("risk", "")))  # fmt: skip
    rows.sort(key=lambda r: (r[0], r[2], r[12] == "casual", r[5], r[3]))  # close contacts first within a hop
    return rows


# -- operations --------------------------------------------------------------------------------------------


def parse_metrics(text: str) -> dict:
    """The numbers the operations page shows, from one Prometheus text exposition (a worker or producer)."""
    from prometheus_client.parser import text_string_to_metric_families

    events: dict[str, float] = defaultdict(float)
    dead: dict[str, float] = defaultdict(float)
    lag = 0.0
    e2e_buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "qrtrace_events_total":
                events[s.labels.get("stage", "?")] += s.value
            elif s.name == "qrtrace_dead_letters_total":
                dead[s.labels.get("reason", "?")] += s.value
            elif s.name == "qrtrace_consumer_lag":
                lag += s.value
            elif s.name == "qrtrace_end_to_end_seconds_bucket":
                le = float(s.labels["le"])
                e2e_buckets[le] = e2e_buckets.get(le, 0.0) + s.value
    return {"events": dict(events), "dead_letters": dict(dead), "consumer_lag": lag, "e2e_buckets": e2e_buckets}


def histogram_quantile(buckets: Mapping[float, float], q: float) -> float | None:
    """The upper bound of the bucket holding quantile q of a cumulative histogram (None when empty)."""
    ordered = sorted(buckets.items())
    if not ordered or ordered[-1][1] <= 0:
        return None
    target = q * ordered[-1][1]
    return next((le for le, count in ordered if count >= target), None)


def rates(previous: Mapping[str, float], current: Mapping[str, float], seconds: float) -> dict[str, float]:
    """Per-second rates between two scrapes of counters (a restarted process counts from zero again)."""
    if seconds <= 0:
        return {}
    return {k: max(0.0, v - previous.get(k, 0.0)) / seconds for k, v in current.items()}
