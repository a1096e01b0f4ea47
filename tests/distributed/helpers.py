"""What the distributed tests compare: stored rows on the server against the embedded pipeline."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from qrtrace.sinks.clickhouse_store import ClickHouseStore

T = TypeVar("T")
# What a reader sees: the latest row of each visit, withdrawn ones left out, and each check-in's current
# outcome (its outcome on arrival, in qrtrace.checkins, depends on the order it arrived in; this does not).
VISITS = ("SELECT venue_id, person, start_us, end_us, opened_by FROM (SELECT * FROM qrtrace.visits_by_venue FINAL) "
          "WHERE withdrawn = 0")
CHECKINS = "SELECT scan_id, venue_id, person, event_time_us, outcome FROM qrtrace.checkin_outcomes FINAL"
DEAD_LETTERS = "SELECT reason, count() AS n FROM qrtrace.dead_letters FINAL GROUP BY reason"


def rows(store, sql: str) -> set[tuple]:  # type: ignore[no-untyped-def]
    result = store.query(sql)
    return set(zip(*result.values(), strict=True))


def dead_letter_counts(store) -> dict[str, int]:  # type: ignore[no-untyped-def]
    result = store.query(DEAD_LETTERS)
    return dict(zip(result["reason"], result["n"], strict=True))


# Simulations start on a fixed day, never "days before today": a run that crosses local midnight would
# otherwise simulate different days on its two sides (it did, at 17:00 UTC).
SIM_START = "2021-07-19"
# ... and are received as a replay: the receiving clock reads a time just after the simulated days (and
# the worked example), within the retention period of all of them.
SIM_CLOCK = "2021-07-28T00:00:00+07:00"


def embedded_result(population: int, days: int, seed: int, keys: Path) -> dict[str, object]:
    """The same simulated input through the embedded pipeline (chDB in a temp dir, same keys)."""
    from datetime import datetime

    from qrtrace.embedded import EmbeddedRuntime
    from qrtrace.producers.simulator import SimulationConfig, build_district, checkin_batches
    from qrtrace.settings import Settings

    start = datetime.fromisoformat(f"{SIM_START}T00:00:00+07:00")
    district = build_district(SimulationConfig(seed=seed, start=start, days=days, population=population))
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRuntime(Settings(store=tmp, key_file=keys, now=SIM_CLOCK)) as rt:
        rt.register_venues(district.venues)
        rt.ingest(checkin_batches(district, 20_000), source="embedded")
        return {
            "visits": rows(rt.store, VISITS),
            "checkins": rows(rt.store, CHECKINS),
            "dead_letters": dead_letter_counts(rt.store),
        }


def server_result(url: str) -> dict[str, object]:
    store = ClickHouseStore(url)
    try:
        return {
            "visits": rows(store, VISITS),
            "checkins": rows(store, CHECKINS),
            "dead_letters": dead_letter_counts(store),
        }
    finally:
        store.close()


def wait_for(probe: Callable[[], T], done: Callable[[T], bool], timeout_s: float, every_s: float = 2.0) -> T:
    """Poll until `done(probe())` or the timeout; returns the last probe either way (bounded loop)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(every_s)


def topic_scan_ids(broker: str, topic: str, timeout_s: float = 60) -> list[str]:
    """Every scan_id in a checkins topic's messages (bundles or single check-ins), from the beginning."""
    import uuid

    from confluent_kafka import Consumer, TopicPartition

    from qrtrace.schemas.registry import default_registry
    from qrtrace.stream_processors.codec import CheckinDecoder

    consumer = Consumer({"bootstrap.servers": broker, "group.id": f"read-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})  # fmt: skip
    try:
        parts = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in parts}
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        decoder, read, ids = CheckinDecoder(default_registry()), dict.fromkeys(parts, 0), []
        deadline = time.monotonic() + timeout_s
        while any(read[p] < ends[p] for p in parts) and time.monotonic() < deadline:
            for msg in consumer.consume(10_000, timeout=1.0):
                if msg.error() is None:
                    read[msg.partition()] = msg.offset() + 1
                    ids += [r["scan_id"] for r in decoder.decode([msg.value()], [msg.offset()]).records]
        return ids
    finally:
        consumer.close()
