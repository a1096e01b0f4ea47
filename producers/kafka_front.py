"""A server's long-lived way onto Kafka for scanner batches: one edge, one producer, one venue cache.

`qrtrace serve` with a broker used to build a keyring, an edge, a Kafka producer and a store connection
for every request and read the whole venue list each time (`qrtrace.distributed.produce_lines`, which
stays for `qrtrace produce`). `KafkaFront` keeps all of that for the life of the process:

- The edge and the producer are created on the first batch and closed (flushed) by `close`.
- Coalescing (`front.Coalescer`): concurrent requests are gathered (up to `LINGER_S` after the first, or
  `MAX_PASS_LINES`) into one pass run by one thread: one edge pass (validate + pseudonymise + seal; the
  edge is not thread-safe, and its fixed cost per call dominated single-scan requests) and one produce, so
  Kafka's messages bundle many scans whatever the request size. `coalesce.split_admitted` gives each
  request its own counts. Past `settings.front_queue_checkins` waiting, a request is refused at once (503).
- Each pass's messages are counted to that pass (`_Acks`): its requests' futures are settled when Kafka
  has acknowledged the messages of *that* pass, not when the whole producer queue is empty (under steady
  load it never is). The gathering thread does not wait for Kafka, so the next pass is built meanwhile.
  Delivery callbacks are served by one poller thread, which settles the futures.
- A message Kafka has not acknowledged within `ACK_TIMEOUT_S` fails (the producer's own message timeout),
  so the caller's 503 ("send it again") is not followed by the same messages landing minutes later.
- The venue registry is cached and read again (by the gathering thread, never per request) at most every
  `VENUE_REFRESH_S`; a pass naming a venue the cache does not hold reads the registry again first, unless
  it was read less than `MISS_REFRESH_GAP_S` ago (a scanner of an unregistered venue cannot make every
  pass read it). A venue registered through this process is seen at once (`venues_changed`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from qrtrace.errors import InputError
from qrtrace.identity import Keyring, Pseudonymiser, Vault
from qrtrace.producers.coalesce import split_admitted
from qrtrace.producers.edge import AdmittedBatch, Edge, receiving_edge
from qrtrace.producers.front import KAFKA, STORE, Coalescer, FrontUnavailable, Pending, Waiting, by_source, fail, settle
from qrtrace.producers.kafka_producer import CHECKINS_TOPIC, CheckinProducer, producer_config, topic_names
from qrtrace.settings import Settings
from qrtrace.sinks.audit import now_us

log = logging.getLogger("qrtrace.front")

ACK_TIMEOUT_S = 10.0  # Kafka's acknowledgement of one batch; past it the batch is answered 503
METADATA_TIMEOUT_S = 5.0  # the first batch's topic lookup (a broker that is away answers 503, not 30 s later)
VENUE_REFRESH_S = 5.0
MISS_REFRESH_GAP_S = 0.5
DOWN_PROBE_S = 0.5  # while every broker is away, how often the producer asks whether one is back


# How long the first request of a pass waits for others to join it. A pass has a fixed cost (~1.5 ms: the
# edge's columnar checks, one produce per partition, the acknowledgements), so at 1,000 single scans/s per
# process 25 ms makes passes of ~25 requests, and Kafka messages of several scans each (measured with
# frontdoor_bench.py, paced 2,000/s: door CPU 8.8 s against 10.8 s at 10 ms, p50 45 ms against 71 ms).
LINGER_S = 0.025
PRODUCER_LINGER_MS = 2
MAX_PASS_LINES = 5_000  # a pass starts at once when this many check-ins wait (one request's maximum)


def kafka_unavailable(message: str) -> FrontUnavailable:
    """Kafka did not acknowledge the batch (away, refused or too slow): nothing is confirmed, send it again."""
    return FrontUnavailable(message, KAFKA)


@dataclass
class _Acks:
    """The delivery reports of one pass's messages; `on_done` runs once every one of them has its report."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    queued: int = 0
    settled: int = 0
    failed: int = 0
    fatal: bool = False
    sealed: bool = False  # every message of the batch is queued: `queued` is final
    first_error: str = ""
    on_done: Callable[[_Acks], None] | None = None  # called once, when every message has its report
    _fired: bool = False

    def add(self) -> None:
        with self.lock:
            self.queued += 1

    def settle(self, err: KafkaError | None) -> None:
        with self.lock:
            self.settled += 1
            if err is not None:
                self.failed += 1
                self.fatal = self.fatal or err.fatal()
                self.first_error = self.first_error or str(err)
        self._fire_if_done()

    def seal(self, on_done: Callable[[_Acks], None] | None = None) -> None:
        with self.lock:
            self.sealed = True
            self.on_done = on_done
        self._fire_if_done()

    def _fire_if_done(self) -> None:
        with self.lock:
            if self._fired or self.on_done is None or not self.sealed or self.settled < self.queued:
                return
            self._fired = True
        self.on_done(self)


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
                  "linger.ms": PRODUCER_LINGER_MS, "error_cb": self._on_error}  # fmt: skip
        # Since when every broker is unreachable (librdkafka's _ALL_BROKERS_DOWN), None while one is reachable:
        # meanwhile new requests are answered 503 at once instead of waiting ACK_TIMEOUT_S for a refusal.
        self.down_since: float | None = None
        self._probed_at = 0.0
        self.raw = _AckingProducer(Producer(config))
        self.producer = CheckinProducer(settings.broker or "", registry_for(settings.schema_registry_url),
                                        settings.topic_prefix, producer=self.raw)  # type: ignore[arg-type]  # fmt: skip
        self.checkins_topic = topic_names(settings.topic_prefix)[CHECKINS_TOPIC]
        self.ready = False  # the checkins topic was found (its partition count is needed to address bundles)
        self.broken = False  # a fatal producer error: the next batch gets a new producer
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="qrtrace-kafka-acks", daemon=True)
        self._poller.start()

    def _on_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._ALL_BROKERS_DOWN and self.down_since is None:
            log.warning("every Kafka broker is unreachable; scanner requests are answered 503 until one is back")
            self.down_since = time.monotonic()

    def delivered(self) -> None:
        """A message was acknowledged: a broker is reachable."""
        self.down_since = None

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:  # this thread settles every request: it must outlive any one error
                self.raw.poll(0.05)
                if self.down_since is not None and time.monotonic() - self._probed_at >= DOWN_PROBE_S:
                    self._probe()
            except Exception:
                log.exception("the Kafka delivery poller failed once; polling on")
                time.sleep(0.05)

    def _probe(self) -> None:
        """While every broker is away, ask for the topic's metadata now and then: an answer means one is back
        (no message is sent meanwhile, so no delivery report could say so)."""
        self._probed_at = time.monotonic()
        try:
            self.raw.list_topics(self.checkins_topic, timeout=DOWN_PROBE_S)
        except KafkaException:
            return
        log.warning("a Kafka broker is reachable again; scanner requests are accepted")
        self.down_since = None

    def check_topic(self) -> None:
        try:
            meta = self.raw.list_topics(self.checkins_topic, timeout=METADATA_TIMEOUT_S).topics.get(self.checkins_topic)
        except KafkaException as exc:
            log.warning("Kafka metadata lookup failed: %s", exc)
            raise kafka_unavailable("Kafka cannot be reached; send the batch again shortly.") from None
        if meta is None or meta.error is not None or not meta.partitions:
            raise kafka_unavailable(f"Kafka has no topic {self.checkins_topic} yet; send the batch again shortly.")
        self.ready = True

    def close(self, timeout_s: float) -> int:
        """Stop the poller, then wait (bounded) for what is still queued; returns how many were not sent."""
        self._stop.set()
        self._poller.join(timeout=5)
        return self.raw.flush(timeout_s)


class KafkaFront:
    """Scanner batches through one long-lived edge and producer onto Kafka (thread-safe)."""

    kind = "kafka"
    answer_timeout_s = ACK_TIMEOUT_S + 5  # Kafka's own message timeout fails first; the margin covers a lost report

    def __init__(self, settings: Settings, keyring: Keyring,
                 read_venues: Callable[[], Collection[str] | Mapping[str, Collection[str]]],
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        """`read_venues` reads the registered venue ids from the store, or each venue id -> its zones (then a
        check-in's zone is checked too); `clock` is monotonic seconds."""
        if not settings.broker:
            raise InputError("No broker given: pass --broker HOST:PORT or set QRTRACE_BROKER.")
        self._settings = settings
        self._keyring = keyring
        self._read_venues = read_venues
        self._clock = clock
        self._coalescer = Coalescer("qrtrace-kafka-coalesce", self._pass, linger_s=LINGER_S,
                                    max_pass_lines=MAX_PASS_LINES,
                                    max_queued_lines=settings.front_queue_checkins)  # fmt: skip
        self._edge: Edge | None = None
        self._edge_venues: Mapping[str, Collection[str]] | None = None
        self._kafka: _Kafka | None = None
        self._venues: Mapping[str, Collection[str]] = {}  # venue id -> its zones
        self._venues_at: float | None = None  # when the cache was read (clock), None: never or invalidated
        self._read_at: float | None = None  # when the registry was last read (a miss waits MISS_REFRESH_GAP_S)
        self.producers_created = 0
        self.venue_reads = 0
        self.passes = 0  # edge passes + produces (fewer than requests when they coalesce)

    # -- the venue registry (read by the gathering thread only) ---------------------------------------------
    def known_venues(self, named: Collection[str]) -> Mapping[str, Collection[str]]:
        """The registered venues: the cache while it is fresh and holds every venue `named`, else read again
        (a miss on a fresh cache at most once per MISS_REFRESH_GAP_S)."""
        now = self._clock()
        at = self._venues_at
        fresh = at is not None and now - at < VENUE_REFRESH_S
        if fresh and all(v in self._venues for v in named):
            return self._venues
        if fresh and self._read_at is not None and now - self._read_at < MISS_REFRESH_GAP_S:
            return self._venues  # a miss just after a read: those check-ins are unknown venues
        try:
            read = _with_zones(self._read_venues())
        except Exception:
            if at is not None:
                log.warning("venue registry not refreshed (store error); using the cache", exc_info=True)
                self._venues_at = self._read_at = self._clock()  # the next try later, not on every pass
                return self._venues
            raise
        self.venue_reads += 1
        self._venues, self._venues_at = read, self._clock()
        self._read_at = self._venues_at
        return read

    def prime(self, venue_ids: Collection[str] | Mapping[str, Collection[str]]) -> None:
        """Start the cache from a registry read the caller just made (the service reads the venues at start):
        a process that has not answered a scanner yet still checks venues while the store is away."""
        self._venues = _with_zones(venue_ids)
        self._venues_at = self._read_at = self._clock()
        self.venue_reads += 1

    def venues_changed(self) -> None:
        self._venues_at = None  # the next pass reads the registry

    # -- batches ----------------------------------------------------------------------------------------------
    def submit(self, lines: list[bytes], venue_ids: Collection[str], source: str,
               future: Waiting | None = None) -> Waiting:  # fmt: skip
        """Queue the batch for the next pass (with the requests arriving at the same moment); its future gets
        this batch's share of the verdict once Kafka acknowledged the messages of its pass. While every
        broker is away, FrontUnavailable at once."""
        kafka = self._kafka
        if kafka is not None and kafka.down_since is not None:
            raise kafka_unavailable("Kafka is unreachable; nothing of this batch was kept, send it again shortly.")
        return self._coalescer.submit(lines, source, venue_ids, future)

    def withdraw(self, future: Waiting) -> bool:
        return self._coalescer.withdraw(future)

    def queued_lines(self) -> int:
        return self._coalescer.queued_lines()

    def _pass(self, taken: list[Pending]) -> None:
        """One edge pass and one produce for `taken` (several sources: one pass per source)."""
        try:
            venues = self.known_venues({v for p in taken for v in p.venue_ids})
        except Exception:
            log.warning("the venue registry cannot be read", exc_info=True)
            fail(taken, FrontUnavailable("The store cannot be read to check venues; send the batch again shortly.",
                                          STORE))  # fmt: skip
            return
        if not venues:
            settle(taken, [InputError("No venues are registered in the store; import them first (qrtrace venues "
                                      "import).") for _ in taken])  # fmt: skip
            return
        try:
            kafka = self._producer()
            if not kafka.ready:
                kafka.check_topic()
        except FrontUnavailable as exc:
            fail(taken, exc)
            return
        edge = self._edge_for(venues)
        for source, group in by_source(taken).items():
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

    def _produce(self, kafka: _Kafka, edge: Edge, group: list[Pending], source: str,
                 admitted: AdmittedBatch | None = None) -> None:  # fmt: skip
        """Queue one pass's messages, counted to one `_Acks` that settles every request of the pass."""
        try:
            if admitted is None:
                admitted = edge.admit([line for p in group for line in p.lines])
            shares = split_admitted(admitted, [len(p.lines) for p in group])
        except Exception as exc:
            log.warning("a scanner batch could not be admitted: %r", exc)
            fail(group, kafka_unavailable("The batch could not be sent; send it again shortly."))
            return
        acks = _Acks()
        kafka.raw.acks = acks
        try:
            kafka.producer.send(admitted, source=source, received_at_us=now_us())
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            kafka.broken = kafka.broken or (isinstance(err, KafkaError) and err.fatal())
            log.warning("Kafka refused a batch: %s", err)
            kafka.raw.acks = None
            acks.seal()
            fail(group, kafka_unavailable("Kafka refused the batch; send it again shortly."))
            return
        kafka.raw.acks = None
        self.passes += 1

        def acknowledged(done: _Acks) -> None:
            if not done.failed:
                kafka.delivered()  # only a pass Kafka took whole says a broker is back: a partly acknowledged
                settle(group, shares)  # one ends when its last message times out, well into an outage
                return
            if done.fatal:
                kafka.broken = True  # the next pass gets a new producer
            # A message may bundle several requests' scans: each request of the pass is answered "send it
            # again" (a resend is deduplicated by scan_id), never a 202 for a scan that was not kept.
            log.warning("Kafka did not accept %d message(s) of a pass: %s", done.failed, done.first_error)
            fail(group, kafka_unavailable("Kafka did not accept the batch; send it again shortly."))

        acks.seal(acknowledged)

    def _producer(self) -> _Kafka:
        """The process's producer (created on the first batch, again only after a fatal error)."""
        if self._kafka is not None and self._kafka.broken:
            log.error("Kafka producer failed fatally; starting a new one")
            self._kafka.close(0)
            self._kafka = None
        if self._kafka is None:
            self._kafka = _Kafka(self._settings)
            self.producers_created += 1
        return self._kafka

    def _edge_for(self, venues: Mapping[str, Collection[str]]) -> Edge:
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
        self._coalescer.close(ACK_TIMEOUT_S + 5)  # the pass under way finishes queueing its messages
        kafka, self._kafka = self._kafka, None
        if kafka is not None:
            left = kafka.close(timeout_s)
            if left:
                log.warning("%d Kafka messages unconfirmed at shutdown; their scanners were answered 503", left)


def _with_zones(venues: Collection[str] | Mapping[str, Collection[str]]) -> Mapping[str, Collection[str]]:
    """Venue id -> its zones, from a read that may give the ids alone (then no venue has zones)."""
    if isinstance(venues, Mapping):
        return {v: tuple(z) for v, z in venues.items()}
    return dict.fromkeys(venues, ())
