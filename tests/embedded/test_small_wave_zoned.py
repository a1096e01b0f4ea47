"""The worked example with zones: its karaoke has two rooms and its office two floors, and every check-in
there names one (or none: a venue-wide scan). Zones never move anyone between hops, so the cohort is the
example's own; they only decide tiers: an exposure at a zoned venue is close when it lasted the category's
threshold in one zone (a venue-wide scan counts as every zone), and casual otherwise."""

from __future__ import annotations

import csv
import json
import shlex
from pathlib import Path

import pytest

from qrtrace.queries.risk import load_rule
from tests.conftest import SMALL_WAVE
from tests.embedded.conftest import REPLAY_2021

pytestmark = pytest.mark.embedded

CASE = "09381480988"
ZONES = {"VN4675010": ("Phòng 1", "Phòng 2"), "VN2829422": ("Tầng 1", "Tầng 2")}


def zone_of(person: str, venue: str) -> str:
    """The case is in the first zone; others by their id: one in five venue-wide (""), the rest split."""
    if venue not in ZONES:
        return ""
    if person == CASE:
        return ZONES[venue][0]
    n = int(person[-3:])
    return "" if n % 5 == 0 else ZONES[venue][n % 2]


def zoned_copy(folder: Path) -> tuple[Path, Path]:
    rows = list(csv.DictReader((SMALL_WAVE / "venues.csv").open(encoding="utf-8")))
    venues = folder / "venues.csv"
    with venues.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, [*rows[0], "zones"])
        w.writeheader()
        for row in rows:
            w.writerow({**row, "zones": ";".join(ZONES.get(row["venue_id"], ()))})
    events = folder / "events.jsonl"
    with events.open("w", encoding="utf-8") as f:
        for line in (SMALL_WAVE / "events.jsonl").read_text(encoding="utf-8").splitlines():
            event = json.loads(line)
            zone = zone_of(event["person_id"], event["venue_id"])
            if zone and event["direction"] == "in":  # a check-out closes the visit whatever its zone
                event["zone"] = zone
            f.write(json.dumps(event, ensure_ascii=False) + "\n")
    return venues, events


def traced(cli, store: Path, venues: Path, events: Path) -> dict:  # type: ignore[no-untyped-def]
    cli("venues", "import", str(venues), store=store, env=REPLAY_2021)
    cli("ingest", str(events), store=store, env=REPLAY_2021)
    command = json.loads((SMALL_WAVE / "expected.json").read_text())["command"]
    return json.loads(cli(*shlex.split(command)[1:], store=store, env=REPLAY_2021).stdout)


def test_zones_decide_tiers_and_never_move_anyone(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    plain = traced(cli, tmp_path / "plain", SMALL_WAVE / "venues.csv", SMALL_WAVE / "events.jsonl")
    venues, events = zoned_copy(tmp_path)
    zoned = traced(cli, tmp_path / "zoned", venues, events)

    def placed(doc: dict) -> set:
        return {(c["person_id"], c["hop"], c["first_exposure"]) for c in doc["contacts"]}

    assert placed(zoned) == placed(plain)  # the example's cohort, exactly
    rule = load_rule("qrtrace-2026")
    category = {r["venue_id"]: r["category"] for r in csv.DictReader(venues.open(encoding="utf-8"))}
    plain_risk = {(c["person_id"], e["venue_id"], e["start"], e["source_person_id"]): e["risk"]
                  for c in plain["contacts"] for e in c["exposures"]}  # fmt: skip
    demoted = 0
    for contact in zoned["contacts"]:
        for e in contact["exposures"]:
            key = (contact["person_id"], e["venue_id"], e["start"], e["source_person_id"])
            if e["venue_id"] not in ZONES:
                assert e["risk"] == plain_risk[key], key  # zones elsewhere change nothing
                continue
            zones = {zone_of(contact["person_id"], e["venue_id"]), zone_of(e["source_person_id"], e["venue_id"])}
            together = len(zones) == 1 or "" in zones
            long_enough = e["overlap_minutes"] * 60_000_000 >= rule.close_overlap_us(category[e["venue_id"]])
            assert e["risk"] == ("close" if together and long_enough else "casual"), (key, zones)
            demoted += plain_risk[key] == "close" and e["risk"] == "casual"
        assert contact["risk"] == ("close" if any(e["risk"] == "close" for e in contact["exposures"]) else "casual")
    assert demoted >= 1, "some exposure in another room or floor went from close to casual"
    assert zoned["tiers"]["close"] < plain["tiers"]["close"]
