"""Batched, idempotent writes of processor output. Each method is one columnar insert per table."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qrtrace.domain.admin_units import COMMUNE_COLUMNS, Commune
from qrtrace.domain.categories import VenueCategory
from qrtrace.domain.venues import Venue
from qrtrace.domain.zones import join_zones
from qrtrace.sinks.store import Columns, Store
from qrtrace.stream_processors.batch import (
    US_PER_DAY,
    CheckinBatch,
    DeadLetter,
    OccupancyBatch,
    OutcomeBatch,
    VisitBatch,
)
from qrtrace.stream_processors.pipeline import ProcessorOutput

# ClickHouse refuses an insert touching more than 100 partitions (max_partitions_per_insert_block); our
# tables are partitioned by day, so a batch spanning more days (a retention of months, a backlog) is
# sent in inserts of at most this many days each, instead of failing after other tables were written.
DAYS_PER_INSERT = 90


class StoreWriter:
    """Turns batches into inserts. Keys in the table design make a retried batch a no-op."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def checkins(self, batch: CheckinBatch, outcome: np.ndarray, ingested_at_us: int) -> None:
        """The check-in log: first deliveries with their outcome on arrival."""
        if not len(batch):
            return
        self._insert_by_day(
            "qrtrace.checkins",
            batch.event_time_us,
            {
                "scan_id": batch.scan_id,
                "venue_id": batch.venue_id,
                "person": batch.person,
                "direction": np.where(batch.is_in, 1, -1).astype(np.int8),
                "event_time_us": batch.event_time_us,
                "offset_minutes": batch.offset_minutes,
                "mode": batch.mode,
                "scanner_id": batch.scanner_id,
                "declaration_sealed": batch.declaration_sealed,
                "outcome": outcome,
                "ingested_at_us": np.full(len(batch), ingested_at_us, dtype=np.int64),
                "zone": batch.zone,
            },
        )

    def visits(self, visits: VisitBatch) -> None:
        """Into visits_by_venue; the materialized view copies them into visits_by_person."""
        if not len(visits):
            return
        self._insert_by_day(
            "qrtrace.visits_by_venue",
            visits.start_us,
            {
                "venue_id": visits.venue_id,
                "person": visits.person,
                "start_us": visits.start_us,
                "end_us": visits.end_us,
                "closed_by": visits.closed_by,
                "version": visits.version,
                "opened_by": visits.opened_by,
                "withdrawn": visits.withdrawn,
                "zone": visits.zone,
            },
        )

    def outcomes(self, outcomes: OutcomeBatch) -> None:
        """Check-ins' current outcomes: a higher version replaces what a late check-in changed."""
        if not len(outcomes):
            return
        self._insert_by_day(
            "qrtrace.checkin_outcomes",
            outcomes.event_time_us,
            {
                "scan_id": outcomes.scan_id,
                "venue_id": outcomes.venue_id,
                "person": outcomes.person,
                "event_time_us": outcomes.event_time_us,
                "outcome": outcomes.outcome,
                "version": outcomes.version,
            },
        )

    def occupancy(self, windows: OccupancyBatch) -> None:
        if not len(windows):
            return
        self._insert_by_day(
            "qrtrace.occupancy",
            windows.window_start_us,
            {
                "venue_id": windows.venue_id,
                "window_start_us": windows.window_start_us,
                "arrivals": windows.arrivals,
                "present": windows.present,
                "capacity": windows.capacity,
                "over_capacity": windows.over_capacity.astype(np.uint8),
                "version": windows.version,
            },
        )

    def _insert_by_day(self, table: str, times_us: np.ndarray, columns: Columns) -> None:
        """One insert, or one per DAYS_PER_INSERT days when the rows span more day partitions."""
        days = np.asarray(times_us, dtype=np.int64) // US_PER_DAY
        distinct = np.unique(days)
        if len(distinct) <= DAYS_PER_INSERT:
            self.store.insert(table, columns)
            return
        for lo in range(0, len(distinct), DAYS_PER_INSERT):
            chosen = np.isin(days, distinct[lo : lo + DAYS_PER_INSERT])
            self.store.insert(table, {name: np.asarray(values)[chosen] for name, values in columns.items()})

    def dead_letters(self, letters: Sequence[DeadLetter], source: str, received_at_us: int) -> None:
        if not letters:
            return
        self.store.insert(
            "qrtrace.dead_letters",
            {
                "dl_id": [d.dl_id for d in letters],
                "received_at_us": np.full(len(letters), received_at_us, dtype=np.int64),
                "source": [source] * len(letters),
                "reason": [d.reason for d in letters],
                "detail": [d.detail for d in letters],
                "payload_redacted": [d.payload_redacted for d in letters],
                "payload_sealed": [d.payload_sealed for d in letters],
            },
        )

    def identities(
        self,
        person: list[str],
        identifier_sealed: list[str],
        contact_sealed: list[str],
        at_us: int,
        source: str = "checkin",
    ) -> None:
        """Identity rows; a contact never goes into identity_vault, where a newer row replaces an older one
        (an empty contact used to erase a phone number): a non-empty one is appended to contact_details.
        Today's edge sends none (see `seal_identities`); an earlier producer's identities messages may."""
        if not person:
            return
        self.store.insert(
            "qrtrace.identity_vault",
            {
                "person": person,
                "identifier_sealed": identifier_sealed,
                "contact_sealed": [""] * len(person),
                "sealed_at_us": np.full(len(person), at_us, dtype=np.int64),
            },
        )
        given = [i for i, c in enumerate(contact_sealed) if c]
        self.contacts([person[i] for i in given], [contact_sealed[i] for i in given], at_us, source)

    def contacts(self, person: list[str], contact_sealed: list[str], at_us: int, source: str) -> None:
        """Append sealed contacts (only ever added: the latest is the one to call, earlier ones stay)."""
        if not person:
            return
        self.store.insert(
            "qrtrace.contact_details",
            {
                "person": person,
                "contact_sealed": contact_sealed,
                "seen_at_us": np.full(len(person), at_us, dtype=np.int64),
                "source": [source] * len(person),
            },
        )

    def venues(self, venues: Sequence[Venue], at_us: int) -> None:
        if not venues:
            return
        self.store.insert(
            "qrtrace.venues",
            {
                "venue_id": [v.venue_id for v in venues],
                "name": [v.name for v in venues],
                "category": [v.category for v in venues],
                "commune_code": [v.commune_code for v in venues],
                "capacity": np.array([v.capacity for v in venues], dtype=np.uint32),
                "registered_at_us": np.full(len(venues), at_us, dtype=np.int64),
                "zones": [join_zones(v.zones) for v in venues],
            },
        )

    def reference_data(self, categories: Sequence[VenueCategory], communes: Sequence[Commune]) -> None:
        self.store.insert(
            "qrtrace.venue_categories",
            {
                "code": [c.code for c in categories],
                "group_code": [c.group for c in categories],
                "name_vi": [c.name_vi for c in categories],
                "name_en": [c.name_en for c in categories],
                "overseeing_office": [c.overseeing_office for c in categories],
                "default_dwell_minutes": np.array([c.default_dwell_minutes for c in categories], dtype=np.uint32),
            },
        )
        self.communes(communes)

    def communes(self, communes: Sequence[Commune]) -> None:
        if not communes:
            return
        self.store.insert("qrtrace.communes", {f: [getattr(c, f) for c in communes] for f in COMMUNE_COLUMNS})


def write_rows(writer: StoreWriter, out: ProcessorOutput, ingested_at_us: int) -> None:
    """A pipeline step's rows, table by table: the check-in log, current outcomes, visits, occupancy.
    Every table is keyed and versioned, so writing a step again (a replay) changes nothing."""
    writer.checkins(out.checkins, out.outcome, ingested_at_us)
    writer.outcomes(out.outcomes)
    writer.visits(out.visits)
    writer.occupancy(out.occupancy)
