"""District simulator: a seeded population with daily routines that emits realistic scanner traffic.

The output is JSON lines in the ingest contract of docs/design.md, in *delivery* order, with the faults
real scanners produce: retried deliveries (same `scan_id`, identical bytes), late deliveries, repeat
scans while a visit is open, missing check-outs, check-outs without a check-in and malformed records.
The same config always gives byte-identical output.

Model, per simulated local day (+07:00), in four disjoint time slots so that one person is never at
two venues at once (weddings and funerals replace the person's daytime activity):

- early (05:00-07:00): markets, essential shops, the bus into town;
- day (07:00-17:45): work at the person's office/factory/industrial zone, school, a market stall, or
  errands (market, shops, health station, pagoda, supermarket, lunch, a bus trip), weddings, funerals;
- after work (17:50-19:50): shops, evening market, gym, early dinner, the bus home;
- evening (19:55-23:30): restaurants, karaoke, bars, nightclub, massage.

Work is numpy-vectorised per day; only the final formatting of each JSON line is per-event Python.

The package, in the order the data flows (names with a leading underscore are the package's own; the
public names are the ones re-exported here, so `qrtrace.producers.simulator` imports as it always did):
`model` (config and contract) -> `tables` (activities, routines, venue layout, names) -> `venue_choice` ->
`layout` (`build_district`) -> `visits` (per day and slot) -> `scans` -> `records` (JSON lines in delivery
order: `checkin_batches`, `expected_event_count`).
"""

from qrtrace.producers.simulator.layout import build_district
from qrtrace.producers.simulator.model import (
    BAD_RECORD_KINDS,
    GATHERING_CATEGORIES,
    MODES,
    REQUIRED_FIELDS,
    ROLES,
    VN_TZ,
    Gathering,
    Person,
    SimulatedDistrict,
    SimulationConfig,
)
from qrtrace.producers.simulator.records import checkin_batches, expected_event_count

__all__ = [
    "BAD_RECORD_KINDS",
    "GATHERING_CATEGORIES",
    "MODES",
    "REQUIRED_FIELDS",
    "ROLES",
    "VN_TZ",
    "Gathering",
    "Person",
    "SimulatedDistrict",
    "SimulationConfig",
    "build_district",
    "checkin_batches",
    "expected_event_count",
]
