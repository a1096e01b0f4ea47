"""The distributed shell: Faust agents around the same pure processors, writing to ClickHouse.

- `checkins` (Avro `CheckinBundle`s, or single `Checkin`s of any version; key = venue_id): batches
  from `stream.take_events`, grouped by partition, run through `CheckinProcessor` with that
  partition's state; results inserted (retried until they land),
  then venue states saved to the `venue_state` table (changelog-backed), then the batch is acked, so
  offsets are committed only after the insert succeeded.
- `checkins.dlq` and `identities`: batched inserts into dead_letters and identity_vault.
- A timer flushes partitions that went quiet, so held events do not wait for the next scan.
Venue state keys are the venue id bytes and the table uses Kafka's murmur2 partitioner: a venue's
state lives on the same partition number as its check-ins.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import pickle
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import faust
import numpy as np
from faust.types import TP

from qrtrace.metrics import (
    BATCH_SIZE,
    CONSUMER_LAG,
    DEAD_LETTERS,
    E2E_SECONDS,
    EVENTS,
    SINK_RETRIES,
    SINK_SECONDS,
)
from qrtrace.producers.kafka_producer import CHECKINS_TOPIC, DEAD_LETTER_TOPIC, IDENTITIES_TOPIC, topic_names
from qrtrace.schemas.confluent_registry import registry_for
from qrtrace.schemas.registry import DEAD_LETTERS_SUBJECT, SchemaRegistry
from qrtrace.schemas.wire import decode_batch, encode_batch
from qrtrace.settings import Settings
from qrtrace.sinks.clickhouse_sql import load_sql
from qrtrace.sinks.resilient import RetryingStore
from qrtrace.sinks.store import Store
from qrtrace.sinks.stores import open_store
from qrtrace.sinks.writer import StoreWriter
from qrtrace.stream_processors.batch import US_PER_MINUTE, DeadLetter
from qrtrace.stream_processors.codec import (
    CheckinDecoder,
    checkin_batch,
    dead_letter_from_record,
    dead_letter_record,
    partition_of,
)
from qrtrace.stream_processors.config import longest_allowed_visit_us, processor_config
from qrtrace.stream_processors.pipeline import CheckinProcessor, ProcessorConfig, ProcessorOutput
from qrtrace.stream_processors.state import PartitionState, VenueState
from qrtrace.stream_processors.state_repair import repair_state

log = logging.getLogger("qrtrace.worker")
TAKE_MAX = 1_000  # messages: bundles of a few dozen check-ins each, so tens of thousands of events
TAKE_WITHIN_S = 1.0
IDLE_FLUSH_S = 3.0
STATE_MAX_BYTES = 16 * 1024 * 1024
HOLDING_REPORT_S = 20.0


def now_us() -> int:
    return time.time_ns() // 1000


class CheckinWorker:
    """Adapter state: one PartitionState per assigned partition, the processor config, the sink."""

    def __init__(
        self,
        settings: Settings,
        table: Any,
        registry: SchemaRegistry,
        store: RetryingStore,
        highwater: Callable[[int], int | None],
        assigned: Callable[[], set[int]],
        committed: Callable[[int], int | None],
        settled: Callable[[], bool],
        publish: Callable[[list[DeadLetter]], Awaitable[None]],
    ) -> None:
        self.settings = settings
        self.table = table
        self.registry = registry
        self.store = store
        self.partitions: dict[int, PartitionState] = {}
        self.cache: dict[str, VenueState] = {}  # unpickled venue states; the table is their changelog
        self.last_event_wall: dict[int, float] = {}
        self.next_offset: dict[int, int] = {}  # per partition: one past the last offset processed here
        self.highwater = highwater
        self.assigned = assigned
        self.committed = committed
        self.settled = settled  # no rebalance under way and the venue_state table recovered
        self.publish = publish  # dead letters to checkins.dlq, returning once Kafka has them
        self.lock = asyncio.Lock()
        self.rebuild = False  # set when the table recovered: partition states are rebuilt under the lock
        self._reported_at = 0.0
        self.config = self._load_config()
        self.decoder = CheckinDecoder(registry)

    def _load_config(self) -> ProcessorConfig:
        rows = self.store.run(lambda s: s.query(load_sql("qrtrace.queries", "venues")))
        return processor_config(rows["venue_id"], rows["category"], rows["capacity"], self.settings)

    # -- state ------------------------------------------------------------------------------------
    def _partition(self, p: int) -> PartitionState:
        state = self.partitions.get(p)
        if state is None:
            # New here (start or rebalance): venues whose held events came back with the table.
            state = self.partitions[p] = PartitionState()
            n = self.settings.partitions
            for key in list(self.table.keys()):
                venue = key.decode()
                if partition_of(venue, n) == p:
                    vs = self._load(venue)
                    if vs is not None:
                        if len(vs.held):
                            state.holding.add(venue)
                        self._repair_if_from_the_future(venue, vs)
                        # The clock goes on from where the last owner left it: a fresh clock would hold
                        # back events the last owner would have released, and pair them differently.
                        state.max_event_time_us = max(state.max_event_time_us, vs.clock_us)
        return state

    def _repair_if_from_the_future(self, venue: str, vs: VenueState) -> None:
        """A venue state saved before event times were bounded (issue 10) may carry a clock in year 9999,
        which would release every held event at once and prune every scan id: repaired as it loads."""
        s = self.settings
        limit = s.clock_us() + s.max_future_us
        if vs.clock_us <= limit:
            return
        one = PartitionState(venues={venue: vs}, max_event_time_us=vs.clock_us)
        repair_state(one, limit, s.occupancy_window_minutes * US_PER_MINUTE, longest_allowed_visit_us(s))
        vs.clock_us = one.max_event_time_us
        EVENTS.labels("worker", "state_repaired").inc()

    def _load(self, venue: str) -> VenueState | None:
        state = self.cache.get(venue)
        if state is None:
            blob = self.table.get(venue.encode())
            if blob is not None:
                # Our own changelog topic, written only by qrtrace workers (see _save).
                state = self.cache[venue] = pickle.loads(blob)
        return state

    def _preload(self, state: PartitionState, venues: set[str]) -> None:
        loaded = {v: self._load(v) for v in venues | state.holding}
        state.venues = {v: s for v, s in loaded.items() if s is not None}

    async def _save(self, state: PartitionState) -> None:
        """Write changed venue states to the table and wait until their changelog records are in Kafka.

        `table[key] = value` only queues the changelog record, and Faust's pre-commit flush gives up
        on a slow send, so an offset could be committed ahead of the state it depends on (a worker
        killed then would lose open visits). Waiting here, before the batch is acked, rules that out."""
        pending: dict[bytes, bytes] = {}
        for venue in state.take_changed():
            vs = state.venues[venue]
            vs.clock_us = state.max_event_time_us
            self.cache[venue] = vs
            key = venue.encode()
            pending[key] = self.table.data[key] = pickle.dumps(vs, protocol=pickle.HIGHEST_PROTOCOL)
        for attempt in itertools.count():
            # Partitioned by key (murmur2), like the check-ins: a venue's state sits on its partition.
            sent = {key: self.table.send_changelog(None, key, blob) for key, blob in pending.items()}
            results = await asyncio.gather(*sent.values(), return_exceptions=True)
            failed = [key for key, r in zip(sent, results, strict=True) if isinstance(r, BaseException)]
            if not failed:
                return
            # Only the latest state of each key is resent (this lock holder is the only writer).
            pending = {key: pending[key] for key in failed}
            log.warning("venue state not written to the changelog (%d venues); retrying", len(failed))
            await asyncio.sleep(min(5.0, 0.2 * 2**attempt))

    def forget_partitions(self) -> None:
        """After a rebalance: state is re-read from the table (another worker may have moved it on).
        `next_offset` stays: offsets only grow, so a partition coming back is never taken as further
        along than it is."""
        self.partitions.clear()
        self.cache.clear()

    def _rebuild_if_recovered(self) -> None:
        if self.rebuild:
            self.rebuild = False
            self.forget_partitions()

    # -- batches ----------------------------------------------------------------------------------
    async def handle(self, events: Sequence[Any]) -> None:
        """Process one take() batch: rows stored, dead letters published, state saved; then Faust acks it."""
        by_partition: dict[int, list[Any]] = {}
        for ev in events:
            by_partition.setdefault(ev.message.partition, []).append(ev)
        async with self.lock:
            self._rebuild_if_recovered()
            mine = self.assigned()
            for p, evs in by_partition.items():
                if p not in mine:
                    # Taken before a rebalance moved p away: its new owner replays them from the last
                    # commit with the state in the table; touching that state here would fork it.
                    EVENTS.labels("worker", "skipped_revoked").inc(len(evs))
                    continue
                await self._handle_partition(p, evs)

    async def _handle_partition(self, p: int, events: list[Any]) -> None:
        decoded = self.decoder.decode([ev.message.value or b"" for ev in events], [ev.message.offset for ev in events])
        letters = [_poison(events[i], why) for i, why in decoded.undecodable]
        good, seq = decoded.records, decoded.seq
        unknown = {r["venue_id"] for r in good} - set(self.config.dwell_us_by_venue)
        if unknown:  # venues registered after start: reload the registry once
            self.config = await asyncio.get_running_loop().run_in_executor(None, self._load_config)
            missing = unknown - set(self.config.dwell_us_by_venue)
            letters += [_unknown_venue(r) for r in good if r["venue_id"] in missing]
            keep = [i for i, r in enumerate(good) if r["venue_id"] not in missing]
            good, seq = [good[i] for i in keep], [seq[i] for i in keep]
        EVENTS.labels("worker", "received").inc(len(decoded.records) + len(decoded.undecodable))
        BATCH_SIZE.labels("worker").observe(len(decoded.records))
        state = self._partition(p)
        batch = checkin_batch(good, np.array(seq, dtype=np.int64))
        self._preload(state, set(batch.venue_id.tolist()))
        out = CheckinProcessor(self.config, state).process(batch, self.settings.clock_us())
        self.last_event_wall[p] = time.monotonic()
        self.next_offset[p] = max(self.next_offset.get(p, 0), max(ev.message.offset for ev in events) + 1)
        highwater = self.highwater(p)
        if highwater is not None:
            CONSUMER_LAG.labels(events[0].message.topic, str(p)).set(max(0, highwater - self.next_offset[p]))
        await self._store(out)
        # Dead letters before the state: once the state remembers these scans, a replay drops them.
        await self.publish(letters + out.dead_letters)
        await self._save(state)
        _observe_latency(events)

    def _caught_up(self, p: int) -> bool:
        """Nothing more to read on partition p: releasing held events cannot reorder anything still coming."""
        highwater = self.highwater(p)
        # Processed here, or committed by whoever owned p before (a partition can arrive fully processed).
        done = max(self.next_offset.get(p, 0), self.committed(p) or 0)
        return highwater is not None and done >= highwater

    async def flush_idle(self) -> None:
        """Release held events of partitions that are caught up and quiet for IDLE_FLUSH_S.

        A partition merely waiting behind a slow batch (or a database outage) is not idle: its next
        events may belong before the held ones, so it keeps holding until it has read everything."""
        async with self.lock:
            if not self.settled():
                # Checked again under the lock: waiting for it can outlast a whole rebalance, after
                # which the table may still be recovering partitions that moved here.
                self._report_holding("the assignment is not settled")
                return
            self._rebuild_if_recovered()
            # Every assigned partition, including one that arrived fully processed but with held events.
            for p in sorted(self.assigned()):
                state = self._partition(p)
                quiet = time.monotonic() - self.last_event_wall.get(p, 0) > IDLE_FLUSH_S
                if state.holding and quiet and not self._caught_up(p):
                    self._report_holding(
                        f"partition {p} is not caught up (read up to {self.next_offset.get(p)}, "
                        f"committed {self.committed(p)}, end {self.highwater(p)})"
                    )
                if state.holding and quiet and self._caught_up(p):
                    self._preload(state, set())
                    out = CheckinProcessor(self.config, state).flush()
                    await self._store(out)
                    await self.publish(out.dead_letters)
                    await self._save(state)

    def _report_holding(self, why: str) -> None:
        """Say, at most every HOLDING_REPORT_S, why held events are not released on a quiet worker."""
        now = time.monotonic()
        if now - self._reported_at > HOLDING_REPORT_S and any(s.holding for s in self.partitions.values()):
            self._reported_at = now
            log.warning("held events wait: %s", why)

    async def _store(self, out: ProcessorOutput) -> None:
        def write(store: Store) -> None:
            writer, at = StoreWriter(store), now_us()
            for table, call in (("checkins", lambda: writer.checkins(out.checkins, out.outcome, at)),
                                ("visits", lambda: writer.visits(out.visits)),
                                ("occupancy", lambda: writer.occupancy(out.occupancy))):  # fmt: skip
                started = time.perf_counter()
                call()
                SINK_SECONDS.labels(table).observe(time.perf_counter() - started)

        await asyncio.get_running_loop().run_in_executor(None, self.store.run, write)
        counts = {k: int(v) for k, v in zip(*np.unique(out.outcome.astype(str), return_counts=True), strict=True)}
        for outcome, n in counts.items():
            EVENTS.labels("pairing", outcome).inc(n)
        EVENTS.labels("sink", "visits").inc(len(out.visits))


def _poison(ev: Any, why: str) -> DeadLetter:
    m = ev.message
    return DeadLetter(f"undecodable:{m.topic}:{m.partition}:{m.offset}", "undecodable",
                      f"{m.topic}[{m.partition}] offset {m.offset}: {why}",
                      '{"value_hex": "' + (m.value or b"")[:512].hex() + '"}')  # fmt: skip


def _unknown_venue(record: dict) -> DeadLetter:
    return DeadLetter(f"unknown_venue:{record['scan_id']}", "unknown_venue",
                      f"venue {record['venue_id']} is not registered in the store the worker writes to",
                      '{"scan_id": "' + record["scan_id"] + '", "venue_id": "' + record["venue_id"] + '"}')  # fmt: skip


def _observe_latency(events: Sequence[Any]) -> None:
    now = time.time()
    for ev in events[:: max(1, len(events) // 100)]:  # a sample is enough for a histogram
        ts = ev.message.timestamp
        if ts:
            E2E_SECONDS.observe(max(0.0, now - ts))


def build_app(settings: Settings, datadir: str, registry: SchemaRegistry | None = None) -> faust.App:
    """The Faust app with its agents, table and timer; `qrtrace worker` runs it. `datadir` is Faust's
    scratch directory (tables live in memory and in their changelog topics)."""
    if not settings.broker:
        raise ValueError("the worker needs a broker (QRTRACE_BROKER or --broker)")
    registry = registry or registry_for(settings.schema_registry_url)
    app = faust.App(
        settings.worker_group,
        broker=f"kafka://{settings.broker}",
        store="memory://",  # tables are rebuilt from their changelog topics on start
        datadir=datadir,
        key_serializer="raw",  # everything on our topics is bytes we encode ourselves (Avro, pickled state)
        value_serializer="raw",
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        producer_acks=-1,
        producer_compression_type="lz4",
        # A busy venue's state (48 h of scan ids, open visits) can pass Kafka's 1 MB default.
        producer_max_request_size=STATE_MAX_BYTES,
        consumer_max_fetch_size=STATE_MAX_BYTES,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        stream_wait_empty=True,
        broker_session_timeout=10.0,  # a killed worker's partitions move on within seconds
        broker_heartbeat_interval=2.0,
    )
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    names = topic_names(settings.topic_prefix)
    checkins = app.topic(names[CHECKINS_TOPIC], partitions=settings.partitions, **raw)
    dlq = app.topic(names[DEAD_LETTER_TOPIC], **raw)
    identities = app.topic(names[IDENTITIES_TOPIC], **raw)
    table = app.Table(
        "venue_state",
        default=None,
        partitions=settings.partitions,
        key_type=bytes,  # bytes key and value: Faust uses raw (no JSON) for the changelog and its recovery
        value_type=bytes,
        use_partitioner=True,
        extra_topic_configs={"max.message.bytes": str(STATE_MAX_BYTES)},
    )  # fmt: skip

    def retrying_store() -> RetryingStore:  # one connection per agent: a connection runs one query at a time
        return RetryingStore(lambda: open_store(settings), on_retry=lambda exc, delay: SINK_RETRIES.inc())

    store, dlq_store, identity_store = retrying_store(), retrying_store(), retrying_store()
    holder: dict[str, CheckinWorker] = {}

    def assigned() -> set[int]:
        return {tp.partition for tp in app.consumer.assignment() if tp.topic == names[CHECKINS_TOPIC]}

    def committed(partition: int) -> int | None:
        # faust-streaming keeps the group's committed offsets here after assignment and each commit.
        return app.consumer._committed_offset.get(TP(names[CHECKINS_TOPIC], partition))

    def highwater(partition: int) -> int | None:
        try:
            return app.consumer.highwater(TP(names[CHECKINS_TOPIC], partition))
        except Exception:  # not assigned here (any more) or not fetched yet: not known to be caught up
            return None

    dl_schema_id, dl_schema = registry.latest(DEAD_LETTERS_SUBJECT)

    def settled() -> bool:
        # `recovery.completed` stays set after the first recovery, hence `in_recovery` as well.
        return not app.rebalancing and not app.in_recovery and app.tables.recovery.completed.is_set()

    def worker() -> CheckinWorker:
        if "w" not in holder:
            holder["w"] = CheckinWorker(
                settings, table, registry, store, highwater, assigned, committed, settled, publish
            )
        return holder["w"]

    async def publish(letters: list[DeadLetter]) -> None:
        if not letters:
            return
        at = now_us()
        values = encode_batch(dl_schema_id, dl_schema, [dead_letter_record(d, "worker", at) for d in letters])
        # force: sent now, not attached to the current event for commit time; awaited until delivered.
        sent = [await dlq.send(key=letter.dl_id.encode(), value=value, force=True)
                for letter, value in zip(letters, values, strict=True)]  # fmt: skip
        await asyncio.gather(*sent)

    @app.agent(checkins)
    async def process_checkins(stream: faust.Stream) -> None:
        async for events in stream.take_events(TAKE_MAX, within=TAKE_WITHIN_S):
            await worker().handle(events)

    @app.agent(dlq)
    async def store_dead_letters(stream: faust.Stream) -> None:
        async for values in stream.take(TAKE_MAX, within=TAKE_WITHIN_S):
            records = decode_batch(registry, list(values))
            letters = [dead_letter_from_record(r) for r in records]
            for letter, _, _ in letters:
                DEAD_LETTERS.labels(letter.reason).inc()

            def write(s: Store, letters: list = letters) -> None:
                w = StoreWriter(s)
                for source in {src for _, src, _ in letters}:
                    batch = [(d, at) for d, src, at in letters if src == source]
                    w.dead_letters([d for d, _ in batch], source, max(at for _, at in batch))

            await asyncio.get_running_loop().run_in_executor(None, dlq_store.run, write)

    @app.agent(identities)
    async def store_identities(stream: faust.Stream) -> None:
        async for values in stream.take(TAKE_MAX, within=TAKE_WITHIN_S):
            rows = decode_batch(registry, list(values))
            at = now_us()

            def write(s: Store, rows: list = rows, at: int = at) -> None:
                StoreWriter(s).identities([r["person"] for r in rows], [r["identifier_sealed"] for r in rows],
                                          [r["contact_sealed"] for r in rows], at)  # fmt: skip

            await asyncio.get_running_loop().run_in_executor(None, identity_store.run, write)

    @table.on_recover
    async def on_table_recovered() -> None:
        # Partition states built while the table was still recovering (an idle flush can run in the
        # gap between assignment and recovery) would miss held events: rebuild them from the table.
        # Only flagged here: waiting for the worker lock inside Faust's recovery could deadlock.
        if "w" in holder:
            holder["w"].rebuild = True

    @app.on_partitions_revoked.connect
    async def on_revoked(app: faust.App, revoked: Any, **kwargs: Any) -> None:
        if "w" in holder:
            async with holder["w"].lock:
                holder["w"].forget_partitions()

    @app.timer(interval=1.0)
    async def flush_quiet_partitions() -> None:
        # Only with a settled assignment and the venue_state table fully recovered (checked under the lock).
        # The worker may not have seen an event yet: partitions can arrive fully read, with held events.
        await worker().flush_idle()

    return app
