"""A server's long-lived way onto Kafka for scanner batches: one edge, one producer, one venue cache.

`qrtrace serve` with a broker used to build a keyring, an edge, a Kafka producer and a store connection
for every request and read the whole venue list each time (`qrtrace.distributed.produce_lines`, which
stays for `qrtrace produce`). `KafkaFront` keeps all of that for the life of the process:

- The edge and the producer are created on the first batch and closed (flushed) by `close`.
- Coalescing: concurrent requests are gathered (up to `LINGER_S` after the first, or `MAX_PASS_LINES`)
  into one pass run by one thread: one edge pass (validate + pseudonymise + seal; the edge is not
  thread-safe, and its fixed cost per call dominated single-scan requests) and one produce, so Kafka's
  messages bundle many scans whatever the request size. `coalesce.split_admitted` gives each request its
  own counts. Past `MAX_QUEUED_LINES` waiting, a request is refused at once (503).
- Each pass's messages are counted to that pass (`_Acks`): a request is answered when Kafka has
  acknowledged the messages of *its* pass, not when the whole producer queue is empty (under steady load it
  never is). The gathering thread does not wait for Kafka, so the next pass is built meanwhile.
  Delivery callbacks are served by one poller thread.
- A message Kafka has not acknowledged within `ACK_TIMEOUT_S` fails (the producer's own message timeout),
  so the caller's 503 ("send it again") is not followed by the same messages landing minutes later.
- The venue registry is cached and read again at most every `VENUE_REFRESH_S`; a batch naming a venue
  the cache does not hold makes it read the registry once before that venue's check-ins are refused
  (such reads are coalesced: at most one per `MISS_REFRESH_GAP_S`, whoever asks).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from qrtrace.errors import InputError
from qrtrace.identity import Keyring, Pseudonymiser, Vault
from qrtrace.producers.coalesce import Share, split_admitted, take_pass
from qrtrace.producers.edge import AdmittedBatch, Edge, receiving_edge
from qrtrace.producers.kafka_producer import CHECKINS_TOPIC, CheckinProducer, producer_config, topic_names
from qrtrace.settings import Settings
from qrtrace.sinks.audit import now_us

log = logging.getLogger("qrtrace.front")

ACK_TIMEOUT_S = 10.0  # Kafka's acknowledgement of one batch; past it the batch is answered 503
METADATA_TIMEOUT_S = 5.0  # the first batch's topic lookup (a broker that is away answers 503, not 30 s later)
VENUE_REFRESH_S = 5.0
MISS_REFRESH_GAP_S = 0.5


LINGER_S = 0.003  # how long the first request of a pass waits for others to join it
PRODUCER_LINGER_MS = 2
MAX_PASS_LINES = 5_000  # a pass starts at once when this many check-ins wait (one request's maximum)
# Past this many check-ins waiting, a new request is refused at once (503): its answer would come too late.
MAX_QUEUED_LINES = 8 * MAX_PASS_LINES


class KafkaUnavailable(Exception):
    """Kafka did not acknowledge the batch (away, refused or too slow): nothing is confirmed, send it again."""


@dataclass
class _Acks:
    """The delivery reports of one batch's messages."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    queued: int = 0
    settled: int = 0
    failed: int = 0
    fatal: bool = False
    sealed: bool = False  # every message of the batch is queued: `queued` is final
    first_error: str = ""

    def add(self) -> None:
        with self.cond:
            self.queued += 1

    def settle(self, err: KafkaError | None) -> None:
        with self.cond:
            self.settled += 1
            if err is not None:
                self.failed += 1
                self.fatal = self.fatal or err.fatal()
                self.first_error = self.first_error or str(err)
            self.cond.notify_all()

    def seal(self) -> None:
        with self.cond:
            self.sealed = True
            self.cond.notify_all()

    def wait(self, timeout_s: float) -> bool:
        """True once every message of the batch has a delivery report (delivered or failed)."""
        with self.cond:
            return self.cond.wait_for(lambda: self.sealed and self.settled >= self.queued, timeout_s)


@dataclass(eq=False)
class _Pending:
    """One request waiting for its pass: its share of the verdict and the acks of the pass, or an error."""

    lines: list[bytes]
    source: str
    arrived: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    acks: _Acks | None = None
    share: Share | None = None
    error: Exception | None = None
    kafka: _Kafka | None = None  # the producer of its pass


class _AckingProducer:
    """The confluent-kafka Producer as `CheckinProducer` uses it, each queued message also counted to the
    batch being sent (`acks`, set by the front under its lock), so `CheckinProducer` stays unchanged."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.acks: _Acks | None = None

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        on_delivery: Callable[[KafkaError | None, Any], None] | None = None,
        **kwargs: Any,
    ) -> None:
        acks = self.acks
        if acks is None:
            raise RuntimeError("a message outside a batch")  # a bug of ours: every send sets the batch

        def delivered(err: KafkaError | None, msg: Any) -> None:
            if on_delivery is not None:
                on_delivery(err, msg)  # CheckinProducer's own report and metrics
            acks.settle(err)

        self.producer.produce(topic, value=value, key=key, on_delivery=delivered, **kwargs)
        acks.add()  # only once queued: a BufferError is retried by CheckinProducer and must not count twice

    def poll(self, timeout: float = 0) -> int:
        return self.producer.poll(timeout)

    def flush(self, timeout: float = 60.0) -> int:
        return self.producer.flush(timeout)

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any:
        return self.producer.list_topics(topic, timeout=timeout)


class _Kafka:
    """One producer and the thread that serves its delivery reports."""

    def __init__(self, settings: Settings) -> None:
        from qrtrace.schemas.confluent_registry import registry_for

        # The front already gathers requests into bundles, so the producer's own 25 ms linger would only add
        # to every answer's wait for its acknowledgement.
        config = {**producer_config(settings.broker or ""), "message.timeout.ms": int(ACK_TIMEOUT_S * 1000),
                  "linger.ms": PRODUCER_LINGER_MS}  # fmt: skip
        self.raw = _AckingProducer(Producer(config))
        self.producer = CheckinProducer(settings.broker or "", registry_for(settings.schema_registry_url),
                                        settings.topic_prefix, producer=self.raw)  # type: ignore[arg-type]  # fmt: skip
        self.checkins_topic = topic_names(settings.topic_prefix)[CHECKINS_TOPIC]
        self.ready = False  # the checkins topic was found (its partition count is needed to address bundles)
        self.broken = False  # a fatal producer error: the next batch gets a new producer
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="qrtrace-kafka-acks", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.raw.poll(0.05)

    def check_topic(self) -> None:
        try:
            meta = self.raw.list_topics(self.checkins_topic, timeout=METADATA_TIMEOUT_S).topics.get(self.checkins_topic)
        except KafkaException as exc:
            log.warning("Kafka metadata lookup failed: %s", exc)
            raise KafkaUnavailable("Kafka cannot be reached; send the batch again shortly.") from None
        if meta is None or meta.error is not None or not meta.partitions:
            raise KafkaUnavailable(f"Kafka has no topic {self.checkins_topic} yet; send the batch again shortly.")
        self.ready = True

    def close(self, timeout_s: float) -> int:
        """Stop the poller, then wait (bounded) for what is still queued; returns how many were not sent."""
        self._stop.set()
        self._poller.join(timeout=5)
        return self.raw.flush(timeout_s)


class KafkaFront:
    """Scanner batches through one long-lived edge and producer onto Kafka (thread-safe)."""

    def __init__(self, settings: Settings, keyring: Keyring, read_venues: Callable[[], Collection[str]],
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        """`read_venues` reads the registered venue ids from the store; `clock` is monotonic seconds."""
        if not settings.broker:
            raise InputError("No broker given: pass --broker HOST:PORT or set QRTRACE_BROKER.")
        self._settings = settings
        self._keyring = keyring
        self._read_venues = read_venues
        self._clock = clock
        self._cond = threading.Condition()  # the queue of requests waiting for a pass
        self._queue: list[_Pending] = []
        self._queued_lines = 0
        self._gatherer: threading.Thread | None = None  # started on the first batch
        self._venue_lock = threading.Lock()  # one registry read at a time
        self._edge: Edge | None = None
        self._edge_venues: frozenset[str] | None = None
        self._kafka: _Kafka | None = None
        self._venues: frozenset[str] = frozenset()
        self._venues_at: float | None = None  # when the cache was read (clock), None: never
        self._closed = False
        self.producers_created = 0
        self.venue_reads = 0
        self.passes = 0  # edge passes + produces (fewer than requests when they coalesce)

    # -- the venue registry ---------------------------------------------------------------------------------
    def known_venues(self, named: Collection[str]) -> frozenset[str]:
        """The registered venues, from the cache when it is fresh and holds every venue `named`."""
        asked = self._clock()
        venues, at = self._venues, self._venues_at
        fresh = at is not None and asked - at < VENUE_REFRESH_S
        if fresh and all(v in venues for v in named):
            return venues
        with self._venue_lock:
            venues, at = self._venues, self._venues_at
            if at is not None and at >= asked and all(v in venues for v in named):
                return venues  # read by another request while this one waited
            if at is not None and asked - at < VENUE_REFRESH_S:  # a miss on a fresh cache: coalesce the reads
                gap = MISS_REFRESH_GAP_S - (self._clock() - at)
                if gap > 0:
                    time.sleep(gap)
            try:
                read = frozenset(self._read_venues())
            except Exception:
                if at is not None and all(v in venues for v in named):
                    log.warning("venue registry not refreshed (store error); using the cache", exc_info=True)
                    self._venues_at = self._clock()  # the next try in VENUE_REFRESH_S, not on every request
                    return venues  # the periodic read failed: the cache still answers this batch
                raise
            self.venue_reads += 1
            self._venues, self._venues_at = read, self._clock()
            return read

    # -- batches ----------------------------------------------------------------------------------------------
    def send(self, lines: list[bytes], venue_ids: Collection[str], source: str) -> Share:
        """Validate, pseudonymise and produce the batch (together with the requests arriving at the same
        moment), and return this batch's share of the verdict once Kafka acknowledged the messages of its
        pass; KafkaUnavailable (nothing confirmed) otherwise."""
        venues = self.known_venues(venue_ids)
        if not venues:
            raise InputError("No venues are registered in the store; import them first (qrtrace venues import).")
        pending = _Pending(lines, source)
        with self._cond:
            if self._closed:
                raise KafkaUnavailable("The server is shutting down; send the batch again.")
            if self._queue and self._queued_lines + len(lines) > MAX_QUEUED_LINES:
                raise KafkaUnavailable("The server has more check-ins waiting than it can send soon; nothing of "
                                       "this batch was kept, send it again in a moment.")  # fmt: skip
            self._queue.append(pending)
            self._queued_lines += len(lines)
            if self._gatherer is None:
                self._gatherer = threading.Thread(target=self._gather, name="qrtrace-kafka-coalesce", daemon=True)
                self._gatherer.start()
            self._cond.notify_all()
        if not pending.done.wait(ACK_TIMEOUT_S + 5):
            with self._cond:  # still waiting for a pass: withdrawn, so the 503 is not followed by its scans landing
                if pending in self._queue:
                    self._queue.remove(pending)
                    self._queued_lines -= len(lines)
            raise KafkaUnavailable(f"Kafka did not confirm the batch within {ACK_TIMEOUT_S:g} s; send it again.")
        if pending.error is not None:
            err = pending.error  # a fresh exception per caller: one object raised in many threads mixes tracebacks
            raise type(err)(str(err)) from None
        acks, share = pending.acks, pending.share
        assert acks is not None and share is not None
        # Kafka's own message timeout fails what it did not deliver; the margin only covers a lost report.
        if not acks.wait(ACK_TIMEOUT_S + 5):
            raise KafkaUnavailable(f"Kafka did not confirm the batch within {ACK_TIMEOUT_S:g} s; send it again.")
        if acks.failed:
            if acks.fatal and pending.kafka is not None:
                pending.kafka.broken = True  # the next pass gets a new producer
            # A message may bundle several requests' scans: each request of the pass is answered "send it
            # again" (a resend is deduplicated by scan_id), never a 202 for a scan that was not kept.
            log.warning("Kafka did not accept %d message(s) of a pass: %s", acks.failed, acks.first_error)
            raise KafkaUnavailable("Kafka did not accept the batch; send it again shortly.")
        return share

    def _take(self) -> list[_Pending] | None:
        """The next pass: what is waiting, once it is LINGER_S old or MAX_PASS_LINES long; None: closed."""
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None
            # Linger a moment for the requests arriving with this one: one pass and one produce for all.
            deadline = self._queue[0].arrived + LINGER_S
            while not self._closed and self._queued_lines < MAX_PASS_LINES:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            taken, n = take_pass(self._queue, MAX_PASS_LINES)
            self._queued_lines -= n
            return taken

    def _gather(self) -> None:
        """The one thread that runs the edge and queues the messages (the edge is not thread-safe)."""
        while (taken := self._take()) is not None:
            try:
                self._pass(taken)
            except BaseException:  # every waiting caller gets an answer, never a hang
                log.exception("a coalesced pass failed")
                for p in taken:
                    if p.share is None and p.error is None:
                        p.error = KafkaUnavailable("The batch could not be sent; send it again shortly.")
            finally:
                for p in taken:
                    p.done.set()
        with self._cond:  # closed: what is still waiting is told to send again
            left, self._queue = self._queue, []
        for p in left:
            p.error = KafkaUnavailable("The server is shutting down; send the batch again.")
            p.done.set()

    def _pass(self, taken: list[_Pending]) -> None:
        """One edge pass and one produce for `taken` (several sources: one pass per source)."""
        try:
            kafka = self._producer()
            if not kafka.ready:
                kafka.check_topic()
        except KafkaUnavailable as exc:
            for p in taken:
                p.error = exc
            return
        edge = self._edge_for(self._venues)  # the latest registry read: every request's venues are in it
        by_source: dict[str, list[_Pending]] = {}
        for p in taken:
            by_source.setdefault(p.source, []).append(p)
        for source, group in by_source.items():
            try:
                admitted = edge.admit([line for p in group for line in p.lines])
            except Exception:
                # One request's lines broke the edge (not a dead letter: an exception): each alone, so only
                # that request fails (503) and its neighbours are still sent.
                log.warning("a coalesced edge pass failed; admitting its %d request(s) one by one", len(group))
                for p in group:
                    self._produce(kafka, edge, [p], source)
                continue
            self._produce(kafka, edge, group, source, admitted)

    def _produce(self, kafka: _Kafka, edge: Edge, group: list[_Pending], source: str,
                 admitted: AdmittedBatch | None = None) -> None:  # fmt: skip
        """Queue one pass's messages, counted to one `_Acks` that every request of the pass waits on."""
        try:
            if admitted is None:
                admitted = edge.admit([line for p in group for line in p.lines])
            shares = split_admitted(admitted, [len(p.lines) for p in group])
        except Exception as exc:
            log.warning("a scanner batch could not be admitted: %r", exc)
            for p in group:
                p.error = KafkaUnavailable("The batch could not be sent; send it again shortly.")
            return
        acks = _Acks()
        kafka.raw.acks = acks
        try:
            kafka.producer.send(admitted, source=source, received_at_us=now_us())
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            kafka.broken = kafka.broken or (isinstance(err, KafkaError) and err.fatal())
            log.warning("Kafka refused a batch: %s", err)
            for p in group:
                p.error = KafkaUnavailable("Kafka refused the batch; send it again shortly.")
            return
        finally:
            kafka.raw.acks = None
            acks.seal()
        self.passes += 1
        for p, share in zip(group, shares, strict=True):
            p.acks, p.share, p.kafka = acks, share, kafka

    def _producer(self) -> _Kafka:
        """The process's producer (created on the first batch, again only after a fatal error); under the lock."""
        if self._kafka is not None and self._kafka.broken:
            log.error("Kafka producer failed fatally; starting a new one")
            self._kafka.close(0)
            self._kafka = None
        if self._kafka is None:
            self._kafka = _Kafka(self._settings)
            self.producers_created += 1
        return self._kafka

    def _edge_for(self, venues: frozenset[str]) -> Edge:
        """The process's edge, checking against `venues` (its validator is rebuilt only when they changed)."""
        if self._edge is None:
            self._edge = receiving_edge(self._settings, Pseudonymiser(self._keyring.pseudonym_key),
                                        Vault(self._keyring.vault_key), venues)  # fmt: skip
        elif venues is not self._edge_venues and venues != self._edge_venues:  # by identity first: no O(n) per batch
            self._edge.use_venues(venues)
        self._edge_venues = venues
        return self._edge

    def close(self, timeout_s: float = 30.0) -> None:
        """Flush what is queued (bounded) and stop; later batches are answered 'send it again'."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            gatherer = self._gatherer
        if gatherer is not None:
            gatherer.join(timeout=ACK_TIMEOUT_S + 5)  # the pass under way finishes queueing its messages
        kafka, self._kafka = self._kafka, None
        if kafka is not None:
            left = kafka.close(timeout_s)
            if left:
                log.warning("%d Kafka messages unconfirmed at shutdown; their scanners were answered 503", left)
