"""The distributed shell: Faust agents around the same pure processors, writing to ClickHouse.

- `checkins` (Avro `CheckinBundle`s, or single `Checkin`s of any version; key = venue_id): batches
  from `stream.take_events`, grouped by partition, each run through the pipeline step
  (`stream_processors/step.py`: pair, write, publish dead letters, save state) with that partition's
  state, then acked, so offsets are committed only after the rows and the state are durable.
- `checkins.dlq` and `identities`: batched inserts into dead_letters and identity_vault.
Venue state keys are the venue id bytes and the table uses Kafka's murmur2 partitioner: a venue's
state lives on the same partition number as its check-ins.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import pickle
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import faust
import numpy as np
from faust.types import TP
from faust.worker import Worker

from qrtrace.errors import QrtraceError
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
from qrtrace.sinks.history import latest_stored, stored_history
from qrtrace.sinks.resilient import RetryingStore
from qrtrace.sinks.store import Store
from qrtrace.sinks.stores import open_store
from qrtrace.sinks.writer import StoreWriter, write_rows
from qrtrace.stream_processors.batch import US_PER_MINUTE, DeadLetter
from qrtrace.stream_processors.codec import (
    CheckinDecoder,
    checkin_batch,
    dead_letter_from_record,
    dead_letter_record,
)
from qrtrace.stream_processors.config import longest_allowed_visit_us, processor_config
from qrtrace.stream_processors.pipeline import ProcessorConfig, ProcessorOutput, StoredHistory
from qrtrace.stream_processors.state import PartitionState, VenueState
from qrtrace.stream_processors.state_repair import repair_state
from qrtrace.stream_processors.step import run_step

log = logging.getLogger("qrtrace.worker")
TAKE_MAX = 1_000  # messages: bundles of a few dozen check-ins each, so tens of thousands of events
TAKE_WITHIN_S = 1.0
STATE_MAX_BYTES = 16 * 1024 * 1024
SHUTDOWN_GRACE_S = 8.0  # a worker stops within this (plus Faust's own few hundred ms) of SIGTERM


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
        publish: Callable[[list[DeadLetter]], Awaitable[None]],
    ) -> None:
        self.settings = settings
        self.table = table
        self.registry = registry
        self.store = store
        self.partitions: dict[int, PartitionState] = {}
        self.cache: dict[str, VenueState] = {}  # unpickled venue states; the table is their changelog
        self.next_offset: dict[int, int] = {}  # per partition: one past the last offset processed here
        self.highwater = highwater
        self.assigned = assigned
        self.publish = publish  # dead letters to checkins.dlq, returning once Kafka has them
        self.lock = asyncio.Lock()
        self.rebuild = False  # set when the table recovered: partition states are rebuilt under the lock
        self.stopping = False  # set on SIGTERM: steps stop retrying and the batch is left unacked
        self.config = self._load_config()
        self.decoder = CheckinDecoder(registry)

    def _load_config(self) -> ProcessorConfig:
        rows = self.store.run(lambda s: s.query(load_sql("qrtrace.queries", "venues")))
        return processor_config(rows["venue_id"], rows["category"], rows["capacity"], self.settings)

    # -- state ------------------------------------------------------------------------------------
    def _partition(self, p: int) -> PartitionState:
        state = self.partitions.get(p)
        if state is None:  # new here (start or rebalance): its venues load from the table as batches need them
            state = self.partitions[p] = PartitionState()
        return state

    def _repair_if_from_the_future(self, venue: str, vs: VenueState) -> None:
        """A venue state saved before event times were bounded (issue 10) may carry a clock in year 9999,
        which would cut every key's history at once: repaired as it loads."""
        s = self.settings
        limit = s.clock_us() + s.max_future_us
        if vs.clock_us <= limit:
            return
        repair_state(PartitionState(venues={venue: vs}), limit, s.occupancy_window_minutes * US_PER_MINUTE,
                     longest_allowed_visit_us(s))  # fmt: skip
        EVENTS.labels("worker", "state_repaired").inc()

    def _load(self, venue: str) -> VenueState | None:
        state = self.cache.get(venue)
        if state is None:
            blob = self.table.get(venue.encode())
            if blob is not None:
                # Our own changelog topic, written only by qrtrace workers (see _save).
                state = self.cache[venue] = pickle.loads(blob)
                self._repair_if_from_the_future(venue, state)
        return state

    def _preload(self, state: PartitionState, venues: set[str]) -> None:
        loaded = {v: self._load(v) for v in venues}
        state.venues = {v: s for v, s in loaded.items() if s is not None}

    async def _save(self, state: PartitionState, venues: set[str]) -> None:
        """Write these venues' states to the table and wait until their changelog records are in Kafka.

        `table[key] = value` only queues the changelog record, and Faust's pre-commit flush gives up
        on a slow send, so an offset could be committed ahead of the state it depends on (a worker
        killed then would lose open visits). Waiting here, before the batch is acked, rules that out."""
        pending: dict[bytes, bytes] = {}
        for venue in venues:
            vs = state.venues[venue]
            self.cache[venue] = vs
            key = venue.encode()
            pending[key] = self.table.data[key] = pickle.dumps(vs, protocol=pickle.HIGHEST_PROTOCOL)
        for attempt in itertools.count():
            if self.stopping:
                raise WorkerStopping("the worker is stopping; the batch is not acked and will be replayed")
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
                try:
                    await self._handle_partition(p, evs)
                except BaseException:
                    # The step may have changed cached states it did not save: the table has the truth.
                    self.forget_partitions()
                    raise

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
        self.next_offset[p] = max(self.next_offset.get(p, 0), max(ev.message.offset for ev in events) + 1)
        highwater = self.highwater(p)
        if highwater is not None:
            CONSUMER_LAG.labels(events[0].message.topic, str(p)).set(max(0, highwater - self.next_offset[p]))
        sinks = WorkerSinks(self, asyncio.get_running_loop())
        now = self.settings.clock_us()
        out = await asyncio.get_running_loop().run_in_executor(
            None, lambda: run_step(self.config, state, batch, sinks, now, letters)
        )
        _count_outcomes(out)
        _observe_latency(events)


class WorkerStopping(QrtraceError):
    """Raised inside a step when the worker was asked to stop: the batch is not acked (replayed later)."""


class WorkerSinks:
    """The step's sinks on a worker, called from the executor thread the step runs in: rows through the
    retrying store, dead letters and venue states through Kafka on the event loop (awaited until sent)."""

    def __init__(self, worker: CheckinWorker, loop: asyncio.AbstractEventLoop) -> None:
        self.worker, self.loop = worker, loop

    def _on_loop(self, coro: Awaitable[None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop).result()  # type: ignore[arg-type]

    def history(self, wanted: list[tuple[str, str, int]]) -> StoredHistory:
        return self.worker.store.run(lambda s: stored_history(s, wanted))

    def latest_stored(self, venues: set[str]) -> dict[str, int]:
        return self.worker.store.run(lambda s: latest_stored(s, venues))

    def write(self, out: ProcessorOutput) -> None:
        def write(store: Store) -> None:
            started = time.perf_counter()
            write_rows(StoreWriter(store), out, now_us())
            SINK_SECONDS.labels("step").observe(time.perf_counter() - started)

        self.worker.store.run(write)

    def publish(self, letters: Sequence[DeadLetter]) -> None:
        self._on_loop(self.worker.publish(list(letters)))

    def save(self, state: PartitionState, venues: set[str]) -> None:
        self._on_loop(self.worker._save(state, venues))


def _count_outcomes(out: ProcessorOutput) -> None:
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
    for s in (store, dlq_store, identity_store):
        s.should_stop = lambda: "w" in holder and holder["w"].stopping
    holder: dict[str, CheckinWorker] = {}

    def assigned() -> set[int]:
        return {tp.partition for tp in app.consumer.assignment() if tp.topic == names[CHECKINS_TOPIC]}

    def highwater(partition: int) -> int | None:
        try:
            return app.consumer.highwater(TP(names[CHECKINS_TOPIC], partition))
        except Exception:  # not assigned here (any more) or not fetched yet: not known to be caught up
            return None

    dl_schema_id, dl_schema = registry.latest(DEAD_LETTERS_SUBJECT)

    def worker() -> CheckinWorker:
        if "w" not in holder:
            holder["w"] = CheckinWorker(settings, table, registry, store, highwater, assigned, publish)
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
        # Venue states cached while the table was still recovering may be older than the recovered ones:
        # re-read them. Only flagged here: waiting for the worker lock inside Faust's recovery could deadlock.
        if "w" in holder:
            holder["w"].rebuild = True

    @app.on_partitions_revoked.connect
    async def on_revoked(app: faust.App, revoked: Any, **kwargs: Any) -> None:
        if "w" in holder:
            async with holder["w"].lock:
                holder["w"].forget_partitions()

    def stop() -> None:  # BoundedWorker calls it on SIGTERM: steps give up retrying, batches stay unacked
        if "w" in holder:
            holder["w"].stopping = True

    app.qrtrace_stop = stop  # type: ignore[attr-defined]
    return app


class BoundedWorker(Worker):
    """Faust's worker, stopping within SHUTDOWN_GRACE_S of SIGTERM or SIGINT even when Kafka or ClickHouse is
    gone (a clean stop waits for the agents, and an agent waiting on an absent broker or database waits
    for ever). Steps in progress stop retrying; past the grace the process exits. Nothing is lost either
    way: a batch is acked only after its step finished, so the next owner replays what was not committed,
    and the step's rows and dead letters are idempotent."""

    def __init__(self, app: faust.App, stop: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._stop_steps = stop
        self._armed = False

    def _arm(self) -> None:
        if self._armed:
            return
        self._armed = True
        self._stop_steps()

        def give_up() -> None:
            log.warning("the worker did not stop within %.0f s of the signal; exiting", SHUTDOWN_GRACE_S)
            logging.shutdown()
            os._exit(0)

        timer = threading.Timer(SHUTDOWN_GRACE_S, give_up)
        timer.daemon = True
        timer.start()

    def _on_sigterm(self) -> None:
        self._arm()
        super()._on_sigterm()

    def _on_sigint(self) -> None:
        self._arm()
        super()._on_sigint()
