"""The embedded runtime: the same edge, processors, sinks and queries, wired in one process on chDB.

This is a shell: it holds the store, the keys and the processor state, and moves batches between
the pure parts. The distributed tier wires the same parts around Kafka and Faust instead.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np

from qrtrace.domain.admin_units import Commune, load_communes
from qrtrace.domain.categories import load_categories
from qrtrace.domain.venues import Venue, check_venue_ids
from qrtrace.errors import InputError
from qrtrace.identity import (
    ContactChanges,
    Keyring,
    Pseudonymiser,
    Vault,
    load_or_create_keyring,
    merge_contacts,
    normalise_identifier,
)
from qrtrace.producers.edge import CONTACT_CONTEXT, AdmittedBatch, Edge, receiving_edge, seal_identities
from qrtrace.queries.coverage import CoverageReport, coverage_report
from qrtrace.queries.hotspots import HotspotReport
from qrtrace.queries.reidentify import Identity, open_contacts, reidentify
from qrtrace.queries.risk import RiskContext
from qrtrace.queries.risk_store import risk_context
from qrtrace.queries.trace import CaseQuery, HopReader, TraceBatch, TraceResult, TraceRules, trace_chunks
from qrtrace.queries.trace_index import IndexHopReader, as_bytes
from qrtrace.queries.visit_reader import StoreHopReader
from qrtrace.settings import Settings
from qrtrace.sinks.audit import AuditLog, now_us
from qrtrace.sinks.clickhouse_sql import load_sql
from qrtrace.sinks.history import latest_stored, stored_history
from qrtrace.sinks.repair import StoreRepair, repair_store
from qrtrace.sinks.retention import drop_expired_partitions
from qrtrace.sinks.store import Store, stamp_schema_version
from qrtrace.sinks.stores import open_store
from qrtrace.sinks.trace_index_files import IndexFiles, IndexFollower, store_clock, trim_feed
from qrtrace.sinks.writer import StoreWriter, write_rows
from qrtrace.stream_processors.batch import US_PER_DAY, US_PER_MINUTE, DeadLetter
from qrtrace.stream_processors.config import longest_allowed_visit_us, processor_config
from qrtrace.stream_processors.pairing import CLOSED, OPENED, REPEAT, UNPAIRED
from qrtrace.stream_processors.pipeline import (
    CheckinProcessor,
    ProcessorConfig,
    ProcessorOutput,
    StoredHistory,
)
from qrtrace.stream_processors.state import PartitionState
from qrtrace.stream_processors.state_repair import StateRepair, repair_state
from qrtrace.stream_processors.step import by_partition, run_step
from qrtrace.stream_processors.venue_state_file import VenueStateFile

# How long an ingesting runtime trusts its copy of the venue registry: a venue registered by another
# process (several processes on one ClickHouse server) is accepted within this many seconds.
VENUE_REGISTRY_TTL_S = 5.0


@dataclass
class IngestReport:
    received: int = 0
    accepted: int = 0  # opened or closed a visit
    deduplicated: int = 0  # retried scan_id or repeat scan while a visit was open
    dead_lettered: int = 0
    # Check-outs that found nothing to close on arrival: an earlier check-in may still arrive (an offline
    # phone, a paper log) and pair them; they become dead letters once the dedupe window has passed.
    unpaired: int = 0
    visits_written: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    unpaired_reasons: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def add(self, out: ProcessorOutput, edge_letters: Sequence[str], received: int) -> None:
        outcome = Counter(out.outcome.tolist())  # each new check-in's outcome on arrival
        self.received += received
        self.accepted += outcome[OPENED] + outcome[CLOSED]
        self.deduplicated += out.retried + outcome[REPEAT]
        for reason in UNPAIRED:
            self.unpaired += outcome[reason]
            if outcome[reason]:
                self.unpaired_reasons[reason] += outcome[reason]
        # The processor's own dead letters: check-outs that stayed unpaired past the window, future events.
        letters = [d.reason for d in out.dead_letters]
        self.reasons.update(edge_letters)
        self.reasons.update(letters)
        self.dead_lettered += len(edge_letters) + len(letters)
        self.visits_written += int((out.visits.withdrawn == 0).sum())

    def add_edge(self, edge_letters: Sequence[str], received: int) -> None:
        """What the edge refused from a batch of `received` lines."""
        self.received += received
        self.reasons.update(edge_letters)
        self.dead_lettered += len(edge_letters)


class EmbeddedSinks:
    """The step's sinks in one process: rows and dead letters into the store, state into the state file."""

    def __init__(self, writer: StoreWriter, states: VenueStateFile | None, source: str, at_us: int) -> None:
        self.writer, self.states, self.source, self.at_us = writer, states, source, at_us

    def history(self, wanted: list[tuple[str, str, int]]) -> StoredHistory:
        return stored_history(self.writer.store, wanted)

    def latest_stored(self, venues: set[str]) -> dict[str, int]:
        return latest_stored(self.writer.store, venues)

    def write(self, out: ProcessorOutput) -> None:
        write_rows(self.writer, out, self.at_us)

    def publish(self, letters: Sequence[DeadLetter]) -> None:
        self.writer.dead_letters(letters, self.source, self.at_us)

    def save(self, state: PartitionState, venues: set[str]) -> None:
        assert self.states is not None
        self.states.save(state, venues)


class EmbeddedRuntime:
    """One process owns the store directory; every CLI command opens one of these."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keyring: Keyring = load_or_create_keyring(settings.key_file)
        self.store = open_store(settings)  # the store URL decides: chDB directory or ClickHouse server
        self.writer = StoreWriter(self.store)
        self.vault = Vault(self.keyring.vault_key)
        self.pseudonymiser = Pseudonymiser(self.keyring.pseudonym_key)
        self.audit = AuditLog(self.store, settings.actor)
        self._partition: PartitionState | None = None  # processor state, loaded on the first ingest
        self._venue_states: VenueStateFile | None = None
        self._ingest_parts: tuple[Edge, ProcessorConfig, float] | None = None  # see _edge_and_config
        self._trace_index: IndexFollower | None = None  # opened by the first trace (or `follow_trace_index`)
        self._following = False
        self._risk_cache: dict[object, tuple[float, RiskContext, tuple]] = {}
        self._ensure_reference_data()

    def close(self) -> None:
        if self._trace_index is not None:
            self._trace_index.stop()
        self._forget_state()
        self.store.close()

    def __enter__(self) -> EmbeddedRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reference data -------------------------------------------------------------------------
    def _ensure_reference_data(self) -> None:
        if not self.store.query("SELECT count() AS n FROM qrtrace.venue_categories")["n"][0]:
            self.writer.reference_data(list(load_categories().values()), load_communes())

    def import_communes(self, communes: Sequence[Commune]) -> None:
        self.writer.communes(communes)

    def commune_codes(self) -> set[str]:
        return set(self.store.query(load_sql("qrtrace.queries", "communes"))["commune_code"])

    def venues(self) -> list[Venue]:
        from qrtrace.domain.zones import split_zones

        rows = self.store.query(load_sql("qrtrace.queries", "venues"))
        return [Venue(*r[:5], zones=split_zones(r[5])) for r in zip(*rows.values(), strict=True)]

    def venue_names(self, venue_ids: Iterable[str]) -> dict[str, str]:
        """venue_id -> registered name of the given venues (an id not registered is absent)."""
        ids = sorted(set(venue_ids))
        if not ids:
            return {}
        rows = self.store.query(load_sql("qrtrace.queries", "venue_names"), {"venue_ids": ids})
        return dict(zip(rows["venue_id"], rows["name"], strict=True))

    def register_venues(self, venues: Sequence[Venue]) -> None:
        check_venue_ids(venues)  # every path that creates a venue comes through here
        self.writer.venues(venues, now_us())
        self._ingest_parts = None  # the next check-in sees them

    def register_contacts(
        self, identifiers: Sequence[str], phones: Sequence[str], purpose: str = "contact directory"
    ) -> ContactChanges:
        """Seal the contact directory (identifier -> phone) so allowed roles can call a contact. Merged into
        what is known (`identity.merge_contacts`): an empty phone keeps the known one, a new number is
        appended (the old stays in the history) and each change is audited."""
        persons = self.pseudonymiser.many(list(identifiers))
        rows = seal_identities(self.vault, dict(zip(persons, identifiers, strict=True)))
        at = now_us()
        self.writer.identities(rows.person, rows.identifier_sealed, rows.contact_sealed, at)
        incoming = dict(zip(persons, phones, strict=True))
        known = open_contacts(self.store, self.vault, sorted(incoming))
        changes = merge_contacts({p: t[-1].contact for p, t in known.items()}, incoming)
        new = changes.rows()
        self.writer.contacts(list(new), [self.vault.seal(c, CONTACT_CONTEXT) for c in new.values()], at, "directory")
        for person in sorted(changes.changed):  # the numbers themselves stay sealed: the log is pseudonymous
            self.audit.record("contact_change", "", person, purpose, source="directory", known=len(known[person]))
        return changes

    # -- ingest ---------------------------------------------------------------------------------
    def ingest(
        self,
        batches: Iterable[Sequence[bytes]],
        source: str,
        on_batch: Callable[[int], None] | None = None,
        on_admitted: Callable[[AdmittedBatch], None] | None = None,
    ) -> IngestReport:
        """Stream batches of JSON lines through edge -> processors -> store; flush at the end.
        `on_admitted` sees each batch's edge verdict (the front door answers each request from it)."""
        started = time.perf_counter()
        edge, config = self._edge_and_config()
        processor = self._load_processor(config)
        try:
            report = self._ingest(edge, processor, batches, source, on_batch, on_admitted)
        except BaseException:
            # The state in memory may now be ahead of the store (scan ids remembered, visits not written):
            # forget it, so the next ingest starts from the last state saved after a complete pass and a
            # resent batch is stored, not dropped as a retry.
            self._forget_state()
            raise
        report.seconds = time.perf_counter() - started
        self._after_stored_pass()
        return report

    def ingest_pass(self, lines: Sequence[bytes], source: str) -> AdmittedBatch:
        """One batch through edge -> processors -> store (a front-door pass); its edge verdict once stored."""
        verdicts: list[AdmittedBatch] = []
        self.ingest([lines], source, on_admitted=verdicts.append)
        return verdicts[0]

    def venues_changed(self) -> None:
        """Read the venue registry again before the next check-in (another process may have registered)."""
        self._ingest_parts = None

    def _edge_and_config(self) -> tuple[Edge, ProcessorConfig]:
        """The edge and the processor configuration, kept between ingests (an API scanner batch is one
        ingest: reading the venue registry and re-sealing every person's identity row each time was a
        quarter of a one-scan pass). Rebuilt after VENUE_REGISTRY_TTL_S, when this runtime registers a
        venue, and after a failed ingest."""
        cached = self._ingest_parts
        if cached is not None and time.monotonic() - cached[2] < VENUE_REGISTRY_TTL_S:
            return cached[0], cached[1]
        venues = self.venues()
        if not venues:
            raise InputError("No venues are registered yet; run `qrtrace venues import FILE.csv` first.")
        edge = receiving_edge(self.settings, self.pseudonymiser, self.vault, {v.venue_id: v.zones for v in venues})
        self._ingest_parts = (edge, self._processor_config(venues), time.monotonic())
        return self._ingest_parts[0], self._ingest_parts[1]

    def _ingest(
        self,
        edge: Edge,
        processor: CheckinProcessor,
        batches: Iterable[Sequence[bytes]],
        source: str,
        on_batch: Callable[[int], None] | None,
        on_admitted: Callable[[AdmittedBatch], None] | None = None,
    ) -> IngestReport:
        report = IngestReport()
        for lines in batches:
            admitted = edge.admit(lines)
            at = now_us()
            ids = admitted.identities
            self.writer.identities(ids.person, ids.identifier_sealed, ids.contact_sealed, at)
            self.writer.dead_letters(admitted.dead_letters, source, at)
            sinks = EmbeddedSinks(self.writer, self._venue_states, source, at)
            # Partitioned as Kafka partitions venue keys: the same steps a worker would run, in partition order.
            for _, part in by_partition(admitted.checkins, self.settings.partitions):
                out = run_step(processor.config, processor.state, part, sinks, self.settings.clock_us())
                report.add(out, [], 0)
            report.add_edge([d.reason for d in admitted.dead_letters], admitted.received)
            if on_batch:
                on_batch(admitted.received)
            if on_admitted:
                on_admitted(admitted)
        return report

    def _processor_config(self, venues: Sequence[Venue]) -> ProcessorConfig:
        ids, cats, caps = [v.venue_id for v in venues], [v.category for v in venues], [v.capacity for v in venues]
        return processor_config(ids, cats, caps, self.settings)

    @property
    def _legacy_state_file(self) -> Path:
        return self.settings.state_dir / "processor.pickle"  # the single-pickle state of earlier versions

    def _load_processor(self, config: ProcessorConfig) -> CheckinProcessor:
        """A processor with the current venues and the state the previous ingest left. The state is read
        from disk once per runtime and kept in memory; each step then saves only the venues it touched.
        The state file is locked for the runtime's life: two processes ingesting into one store (possible
        with a ClickHouse server) would each overwrite the other's venues with stale ones."""
        if self._partition is None:
            self._venue_states = VenueStateFile(self.settings.state_dir / "venue_state.sqlite")
            self._partition = self._venue_states.load()
            legacy = self._legacy_state_file
            if legacy.exists():
                legacy.unlink()  # the single-pickle state of versions before the state file: not readable now
        return CheckinProcessor(config, self._partition)

    def _save_processor(self, p: CheckinProcessor) -> None:
        """Saved after the store accepted the repair: a crash before this leaves a repair to run again.
        The venues are marked saved only once the save succeeded."""
        assert self._venue_states is not None
        changed = set(p.state.changed)
        self._venue_states.save(p.state, changed)
        p.state.changed -= changed

    def _forget_state(self) -> None:
        self._ingest_parts = None  # its edge may remember identities whose rows the failed pass did not write
        if self._venue_states is not None:
            self._venue_states.close()
        self._venue_states, self._partition = None, None

    # -- the trace index -------------------------------------------------------------------------
    @property
    def trace_index_files(self) -> IndexFiles:
        return IndexFiles(self.settings.state_dir / "trace-index")

    def trace_index(self, store: Store | None = None, on_build: Callable[[int, int], None] | None = None
                    ) -> IndexFollower:  # fmt: skip
        """The trace index of the store, caught up with every visit stored so far: opened (memory-mapped)
        the first time, built from the store if missing or stale (`on_build(rows done, rows)`), then caught
        up from the visit feed at each call unless a thread follows it (`follow_trace_index`)."""
        if self._trace_index is None:
            self._trace_index = IndexFollower(self.trace_index_files, store or self.store, on_build)
        elif not self._following:
            self._trace_index.refresh()
        return self._trace_index

    def follow_trace_index(self, store: Store, every_s: float = 0.5) -> IndexFollower:
        """Keep the index warm in a long-running process (`qrtrace serve`): a thread catches it up with the
        visit feed every `every_s` seconds through `store` (the service's locked store)."""
        follower = self.trace_index(store)
        follower.store = store
        if not self._following:
            follower.follow(every_s)
            self._following = True
        return follower

    def _after_stored_pass(self) -> None:
        """An ingesting process keeps the index on disk current (the next trace process opens it ready),
        when there is one; a followed index catches up by itself."""
        if self._following or self.settings.trace_reader != "index":
            return
        if self._trace_index is not None:
            self._trace_index.persist()  # catches up itself: no refresh first
        elif (self.trace_index_files.directory / "meta.json").exists():
            self.trace_index().persist()  # opening caught up; persist merges and saves

    def _hop_reader(self, store: Store | None) -> HopReader:
        longest = longest_allowed_visit_us(self.settings)
        if self.settings.trace_reader == "store":
            return StoreHopReader(store or self.store, longest)
        return IndexHopReader(self.trace_index(store).current(), longest)

    # -- trace and reports ----------------------------------------------------------------------
    def trace(
        self, person_id: str, from_us: int, to_us: int, rules: TraceRules, purpose: str, case_id: str = ""
    ) -> tuple[TraceResult, dict[str, Identity]]:
        """Trace one case given by the identifier they checked in with; audited, then re-identified."""
        results, identities = self.trace_many([(case_id, person_id, from_us, to_us)], rules, purpose)
        return results[0], identities

    def trace_many(
        self,
        cases: Sequence[tuple[str, str, int, int]],
        rules: TraceRules,
        purpose: str,
        on_hop: Callable[[int], None] | None = None,
    ) -> tuple[list[TraceResult], dict[str, Identity]]:
        """Trace (case_id, identifier, from, to) cases in one pass sharing reads; each is audited. Holds every
        result: for a large batch use `trace_many_chunks`."""
        results: list[TraceResult] = []
        identities: dict[str, Identity] = {}
        progress = (lambda f: on_hop(round(f * rules.depth))) if on_hop else None
        for chunk, found in self.trace_many_chunks(cases, rules, purpose, progress):
            results += chunk
            identities.update(found)
        return results, identities

    def trace_many_chunks(
        self,
        cases: Sequence[tuple[str, str, int, int]],
        rules: TraceRules,
        purpose: str,
        on_progress: Callable[[float], None] | None = None,
    ) -> Iterator[tuple[list[TraceResult], dict[str, Identity]]]:
        """`trace_many` a chunk of cases at a time: each chunk's results and the identities of the people
        they name (one audited re-identification per chunk), so a caller can write them out and drop them."""
        queries = []
        raw_by_person: dict[str, str] = {}
        for case_id, person_id, from_us, to_us in cases:
            person = self.pseudonymiser.one(person_id)
            raw_by_person[person] = person_id
            queries.append(CaseQuery(case_id or f"trace-{person[:12]}", person, from_us, to_us))
        case_ids = ",".join(q.case_id for q in queries)
        for _, batch in self.trace_chunks(queries, rules, purpose, self.audit, on_progress):
            results = batch.results()
            persons = persons_in(results) - set(raw_by_person)
            identities = reidentify(self.store, self.vault, self.audit, sorted(persons), case_ids, purpose)
            # The case in the one spelling the vault keeps (the API shows the same), not as typed.
            identities.update({p: Identity(normalise_identifier(raw), "") for p, raw in raw_by_person.items()})
            yield results, identities

    def trace_pseudonymous(
        self,
        queries: Sequence[CaseQuery],
        rules: TraceRules,
        purpose: str,
        audit: AuditLog,
        on_hop: Callable[[int], None] | None = None,
        store: Store | None = None,
    ) -> list[TraceResult]:
        """Trace cases given by pseudonym; every case is audited, nobody is re-identified. `store` lets a
        caller read through a wrapper (the API's per-statement lock) instead of the runtime's own store.
        Holds every result: for a large batch use `trace_chunks`."""
        hops = (lambda f: on_hop(round(f * rules.depth))) if on_hop else None
        chunks = self.trace_chunks(queries, rules, purpose, audit, hops, store)
        return [r for _, batch in chunks for r in batch.results()]

    def trace_chunks(
        self,
        queries: Sequence[CaseQuery],
        rules: TraceRules,
        purpose: str,
        audit: AuditLog,
        on_progress: Callable[[float], None] | None = None,
        store: Store | None = None,
    ) -> Iterator[tuple[int, TraceBatch]]:
        """Trace cases given by pseudonym a chunk of cases at a time (`trace_chunks` of the core; its size set
        by QRTRACE_TRACE_CHUNK_ROWS), auditing each case as its chunk is done. More cases than
        QRTRACE_TRACE_MAX_CASES are refused before anything is read."""
        if len(queries) > self.settings.trace_max_cases:
            raise InputError(f"A trace run takes at most {self.settings.trace_max_cases:,} cases "
                             f"(QRTRACE_TRACE_MAX_CASES), not {len(queries):,}; split the cases into "
                             "several runs.")  # fmt: skip
        reader = self._hop_reader(store)
        risk = self._risk_context(reader, rules, store)
        rule = rules.risk.label if rules.risk is not None else None
        for first, batch in trace_chunks(reader, list(queries), rules, self.settings.trace_chunk_rows, on_progress,
                                         risk):  # fmt: skip
            counts = np.bincount(batch.contacts["case"], minlength=len(batch.cases))
            for q, n in zip(batch.cases, counts.tolist(), strict=True):
                audit.record(
                    "trace", q.case_id, q.person, purpose, from_us=q.from_us, to_us=q.to_us,
                    depth=rules.depth, grace_us=rules.grace_us, min_overlap_us=rules.min_overlap_us,
                    until_us=rules.until_us, contacts=n, rule=rule, sources=rules.sources,
                )  # fmt: skip
            yield first, batch

    RISK_CONTEXT_TTL_S = 10.0  # a serving process re-reads venues and over-capacity windows this often

    def _risk_context(self, reader: HopReader, rules: TraceRules, store: Store | None) -> RiskContext | None:
        """What the trace's rule needs of the store, keyed like `reader`'s venues; kept for a few seconds
        by a serving process (two small reads, not worth repeating for every millisecond trace)."""
        if rules.risk is None:
            return None
        index = reader.index if isinstance(reader, IndexHopReader) else None
        # the index's dictionaries themselves (held here, compared by identity): a context's codes are theirs
        keyed = (index.venues, index.zones) if index is not None else (None, None)
        cached = self._risk_cache.get(rules.risk)
        if (cached is not None and time.monotonic() - cached[0] < self.RISK_CONTEXT_TTL_S
                and all(a is b for a, b in zip(cached[2], keyed, strict=True))):  # fmt: skip
            return cached[1]
        window_us = self.settings.occupancy_window_minutes * US_PER_MINUTE
        # every stored window (retention bounds the table; a replayed 2021 wave is older than "now - 21 days")
        if index is None:
            ctx = risk_context(store or self.store, rules.risk, window_us)
        else:
            wide = int(index.zones.codes(as_bytes(np.asarray([""], dtype=object)))[0])  # -1: no venue-wide visit
            ctx = risk_context(store or self.store, rules.risk, window_us, 0,
                               lambda ids: index.venues.codes(as_bytes(ids)), len(index.venues), wide)  # fmt: skip
        self._risk_cache = {rules.risk: (time.monotonic(), ctx, keyed)}
        return ctx

    def declare_case(self, case_id: str, person_id: str, from_us: int, to_us: int, actor: str | None = None) -> str:
        """Record a positive case under its pseudonym (the identifier itself is never stored); returns it."""
        person = self.pseudonymiser.one(person_id)
        self.store.insert(
            "qrtrace.cases",
            {
                "case_id": [case_id],
                "person": [person],
                "infectious_from_us": [from_us],
                "infectious_to_us": [to_us],
                "declared_at_us": [now_us()],
                "declared_by": [actor or self.settings.actor],
            },
        )
        return person

    def coverage(self, as_of_us: int | None = None, days: int = 1) -> CoverageReport:
        as_of = as_of_us if as_of_us is not None else now_us()
        return coverage_report(self.store, as_of, as_of - days * US_PER_DAY, self.settings.lang)

    def coverage_trend(self, as_of_us: int, days: int) -> tuple[dict[str, list], int]:
        """Per local day and commune: active venues, scans, people for the `days` days up to `as_of`;
        returns the rows and the first day's number (a period ending at midnight ends the day before)."""
        offset = int((self.settings.display_tz.utcoffset(None) or timedelta(0)).total_seconds()) * 1_000_000
        first_day = (as_of_us - 1 + offset) // US_PER_DAY - days + 1
        params = {"since_us": first_day * US_PER_DAY - offset, "as_of_us": as_of_us, "offset_us": offset}
        return self.store.query(load_sql("qrtrace.queries", "coverage_daily_trend"), params), first_day

    def hotspots(self, as_of_us: int, days: int, visible: Collection[str] | None = None, limit: int = 20,
                 lang: str | None = None) -> HotspotReport:
        """Crowding hotspots of the `days` days up to `as_of_us` in `visible` communes (None: all)."""
        from qrtrace.queries.hotspots import hotspot_report

        offset = int((self.settings.display_tz.utcoffset(None) or timedelta(0)).total_seconds()) * 1_000_000
        return hotspot_report(self.store, as_of_us, days, window_minutes=self.settings.occupancy_window_minutes,
                              offset_us=offset, visible=visible, limit=limit, lang=lang or self.settings.lang)

    def apply_retention(self, now: int | None = None) -> list[tuple[str, int]]:
        now = now if now is not None else self.settings.clock_us()
        cutoff_day = now // US_PER_DAY - self.settings.retention_days
        dropped = drop_expired_partitions(self.store, cutoff_day)
        trim_feed(self.store, store_clock(self.store))  # the visit feed keeps its last few days (by the store's clock)
        return dropped

    def repair(self) -> tuple[StoreRepair, StateRepair]:
        """Repair a store and processor state written before event times and visits were bounded
        (`qrtrace repair`): future rows out, over-long visits shortened, the venues' clocks moved back."""
        s = self.settings
        now = s.clock_us()
        latest = now + s.max_future_us
        venues = self.venues()
        processor = self._load_processor(self._processor_config(venues))
        window_us = s.occupancy_window_minutes * US_PER_MINUTE
        state_report = repair_state(processor.state, latest, window_us, longest_allowed_visit_us(s))
        cats = load_categories().values()
        dwell = {c.code: c.default_dwell_minutes * US_PER_MINUTE for c in cats}
        caps = {c.code: s.visit_cap_us(c.default_dwell_minutes) for c in cats}
        at = now_us()
        store_report = repair_store(self.store, latest, dwell, caps, at)
        # A repair rewrites visits in place (mutations the visit feed never sees): a new layout stamp makes
        # every trace index of this store rebuild, here and in any process that follows it.
        stamp_schema_version(self.store)
        self.trace_index_files.invalidate()
        if self._trace_index is not None:
            self._trace_index.stop()
        self._trace_index, self._following = None, False
        self._save_processor(processor)  # after the store: a crash in between leaves a repair to run again
        return store_report, state_report


def persons_in(results: Sequence[TraceResult]) -> set[str]:
    """Every pseudonym a set of results names: cases, contacts and the sources of their exposures."""
    persons = {r.case.person for r in results}
    for r in results:
        persons |= {c.person for c in r.contacts} | {e.source_person for c in r.contacts for e in c.exposures}
    return persons
