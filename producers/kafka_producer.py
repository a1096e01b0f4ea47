"""The edge's Kafka shell: admitted batches out as Avro (Confluent wire format) on venue-keyed topics.

Check-ins go to `checkins` on their venue's partition (murmur2 of venue_id), so a venue's events stay
in order on one partition, bundled per partition in arrival order (`CheckinBundle`, see schemas/avro);
refused records go to `checkins.dlq`; vault rows for newly seen people go to `identities`.
The partitioner is Java's murmur2, the one Faust tables use, so a venue's state changelog lands on
the same partition number as its check-ins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, Producer

from qrtrace.errors import QrtraceError
from qrtrace.metrics import DELIVERY_ERRORS, EVENTS
from qrtrace.producers.edge import AdmittedBatch
from qrtrace.schemas.registry import (
    CHECKIN_BUNDLES_SUBJECT,
    DEAD_LETTERS_SUBJECT,
    IDENTITIES_SUBJECT,
    SchemaRegistry,
)
from qrtrace.schemas.wire import encode_batch
from qrtrace.stream_processors.batch import CheckinBatch
from qrtrace.stream_processors.codec import checkin_bundles, dead_letter_record

CHECKINS_TOPIC = "checkins"
DEAD_LETTER_TOPIC = "checkins.dlq"
IDENTITIES_TOPIC = "identities"


def topic_names(prefix: str = "") -> dict[str, str]:
    """The pipeline's topics, namespaced by `prefix` (empty in production, unique per test run)."""
    return {t: prefix + t for t in (CHECKINS_TOPIC, DEAD_LETTER_TOPIC, IDENTITIES_TOPIC)}


def producer_config(broker: str) -> dict[str, object]:
    """Tuned for ~150-byte events: idempotent, acks=all, batched and compressed."""
    return {
        "bootstrap.servers": broker,
        "enable.idempotence": True,  # retries cannot reorder or duplicate within a partition
        "acks": "all",
        "linger.ms": 25,  # wait up to 25 ms to fill batches
        "batch.size": 1_000_000,  # ~6,000 events per partition batch
        "compression.type": "lz4",
        "partitioner": "murmur2_random",  # Java-compatible: matches Faust's table partitioner
        "queue.buffering.max.messages": 2_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
        "message.timeout.ms": 300_000,  # keep retrying through a broker restart for 5 minutes
        "log_level": 3,  # errors only: transient broker warnings are retried and reported by delivery callbacks
    }


def checkin_messages(
    batch: CheckinBatch, bundle_schema: tuple[int, Any], partitions: int
) -> tuple[list[int], list[bytes]]:
    """Partitions and values for the checkins topic: `CheckinBundle`s, each for one partition."""
    targets, bundles = checkin_bundles(batch, partitions)
    return targets, encode_batch(*bundle_schema, bundles)


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def callback(self) -> Callable[[KafkaError | None, object], None]:
        def on_delivery(err: KafkaError | None, _msg: object) -> None:
            if err is None:
                self.delivered += 1
            else:
                self.failed += 1
                DELIVERY_ERRORS.inc()
                if len(self.errors) < 10:
                    self.errors.append(str(err))

        return on_delivery


class CheckinProducer:
    """Produces admitted batches. Holds one confluent-kafka Producer; call `flush` before exit."""

    def __init__(
        self, broker: str, registry: SchemaRegistry, topic_prefix: str = "", producer: Producer | None = None
    ) -> None:
        self._producer = producer or Producer(producer_config(broker))
        self._topics = topic_names(topic_prefix)
        subjects = (CHECKIN_BUNDLES_SUBJECT, DEAD_LETTERS_SUBJECT, IDENTITIES_SUBJECT)
        self._schemas = {s: registry.latest(s) for s in subjects}
        self._partition_counts: dict[str, int] = {}
        self.report = DeliveryReport()
        self._on_delivery = self.report.callback()

    def send(self, admitted: AdmittedBatch, source: str, received_at_us: int) -> None:
        """Queue one admitted batch: check-ins, dead letters and new identities."""
        batch = admitted.checkins
        EVENTS.labels("producer", "received").inc(admitted.received)
        EVENTS.labels("producer", "sent").inc(len(batch))
        EVENTS.labels("producer", "dead_lettered").inc(len(admitted.dead_letters))
        if len(batch):
            topic = self._topics[CHECKINS_TOPIC]
            targets, values = checkin_messages(batch, self._schemas[CHECKIN_BUNDLES_SUBJECT], self._partitions(topic))
            self._produce_all(topic, [None] * len(values), values, targets)
        if admitted.dead_letters:
            dl_id, dl_schema = self._schemas[DEAD_LETTERS_SUBJECT]
            records = [dead_letter_record(d, source, received_at_us) for d in admitted.dead_letters]
            self._produce_all(self._topics[DEAD_LETTER_TOPIC], [d.dl_id.encode() for d in admitted.dead_letters],
                              encode_batch(dl_id, dl_schema, records))  # fmt: skip
        ids = admitted.identities
        if len(ids):
            id_id, id_schema = self._schemas[IDENTITIES_SUBJECT]
            records = [
                {"person": p, "identifier_sealed": i, "contact_sealed": c}
                for p, i, c in zip(ids.person, ids.identifier_sealed, ids.contact_sealed, strict=True)
            ]
            self._produce_all(
                self._topics[IDENTITIES_TOPIC],
                [p.encode() for p in ids.person],
                encode_batch(id_id, id_schema, records),
            )

    def _partitions(self, topic: str) -> int:
        """The topic's partition count, from the broker once (bundles are addressed to partitions)."""
        if topic not in self._partition_counts:
            meta = self._producer.list_topics(topic, timeout=30).topics.get(topic)
            if meta is None or meta.error is not None or not meta.partitions:
                raise QrtraceError(f"Kafka topic {topic} does not exist; create the topics first (qrtrace up does).")
            self._partition_counts[topic] = len(meta.partitions)
        return self._partition_counts[topic]

    def _produce_all(
        self, topic: str, keys: list[bytes | None], values: list[bytes], partitions: list[int] | None = None
    ) -> None:
        produce, poll = self._producer.produce, self._producer.poll
        for i, (key, value) in enumerate(zip(keys, values, strict=True)):
            where = {} if partitions is None else {"partition": partitions[i]}
            while True:
                try:
                    produce(topic, value=value, key=key, on_delivery=self._on_delivery, **where)
                    break
                except BufferError:  # local queue full: let deliveries drain, then retry this message
                    poll(0.1)
        poll(0)

    def flush(self, timeout_s: float = 60.0) -> int:
        """Wait for every queued message; returns how many are still undelivered."""
        left = self._producer.flush(timeout_s)
        if self.report.failed:
            raise QrtraceError(
                f"{self.report.failed} messages could not be delivered to Kafka (first: {self.report.errors[0]})."
            )
        return left
