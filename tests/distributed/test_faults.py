"""Faults, each ending with nothing lost and nothing duplicated (rows compared exactly with the embedded run):
a worker SIGKILLed mid-stream and restarted, the broker restarted, the database away for a while,
and 1% poison messages (they land in checkins.dlq, then in dead_letters, with a reason)."""

from __future__ import annotations

import os
import signal
import time

import pytest
from confluent_kafka import Producer

from tests.distributed.helpers import SIM_START, embedded_result, server_result, wait_for

pytestmark = pytest.mark.distributed
POPULATION, DAYS, SEED = 6000, 2, 11


def visits_stored(pipeline) -> int:  # type: ignore[no-untyped-def]
    """Visit rows stored so far: a count, cheap enough to ask every 0.1 s (a worker's batch can store a
    large part of the stream at once, so a slower probe could miss the middle of it)."""
    from qrtrace.sinks.clickhouse_store import ClickHouseStore

    store = ClickHouseStore(pipeline.servers.store_url)
    try:
        return int(store.query("SELECT count() AS n FROM qrtrace.visits_by_venue FINAL")["n"][0])
    except Exception:  # the database is starting or away: nothing stored yet as far as this probe knows
        return 0
    finally:
        store.close()


def mid_stream(pipeline, expected: dict, low: float = 0.02) -> int:  # type: ignore[no-untyped-def]
    """Wait until some, but not all, visits are stored; returns how many."""
    total = len(expected["visits"])
    n = wait_for(lambda: visits_stored(pipeline), lambda n: n >= low * total, timeout_s=120, every_s=0.1)
    assert 0 < n < total, f"expected to interrupt mid-stream, saw {n} of {total}"
    return n


def assert_converges(pipeline, expected: dict, logs) -> None:  # type: ignore[no-untyped-def]
    got = wait_for(lambda: server_result(pipeline.servers.store_url), lambda r: r == expected, timeout_s=300)
    missing, extra = expected["visits"] - got["visits"], got["visits"] - expected["visits"]
    tail = "\n".join(p.read_text(errors="replace")[-2000:] for p in logs)
    assert not missing and not extra, f"visits missing {len(missing)}, extra {len(extra)}\n{tail}"
    assert got["checkins"] == expected["checkins"]
    assert got["dead_letters"] == expected["dead_letters"]


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, object]:
    keys = tmp_path_factory.mktemp("keys") / "keys.json"
    return embedded_result(POPULATION, DAYS, SEED, keys), keys


def produce(pipeline, keys) -> None:  # type: ignore[no-untyped-def]
    pipeline.keys = keys  # same pseudonymisation key as the embedded reference
    pipeline.cli("produce", "--simulate", "--population", str(POPULATION), "--days", str(DAYS), "--seed", str(SEED),
                 "--start", SIM_START)


def test_worker_killed_mid_stream_and_restarted(pipeline, expected, tmp_path) -> None:  # type: ignore[no-untyped-def]
    want, keys = expected
    produce(pipeline, keys)
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    victim = pipeline.start_worker(logs[0])
    pipeline.start_worker(logs[1])
    mid_stream(pipeline, want)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    pipeline.start_worker(logs[0])
    assert_converges(pipeline, want, logs)


def test_broker_restarted_mid_stream(pipeline, expected, tmp_path) -> None:  # type: ignore[no-untyped-def]
    want, keys = expected
    produce(pipeline, keys)
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    for log in logs:
        pipeline.start_worker(log)
    mid_stream(pipeline, want)
    pipeline.servers.restart_broker(down_s=3)
    assert_converges(pipeline, want, logs)


def test_database_away_for_a_while(pipeline, expected, tmp_path) -> None:  # type: ignore[no-untyped-def]
    want, keys = expected
    produce(pipeline, keys)
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    for log in logs:
        pipeline.start_worker(log)
    mid_stream(pipeline, want)
    pipeline.servers.stop_clickhouse()
    try:
        time.sleep(10)  # workers keep consuming, fail to insert, back off, and hold their offsets
    finally:
        pipeline.servers.start_clickhouse()
    assert_converges(pipeline, want, logs)


def test_poison_messages_go_to_the_dead_letter_topic(pipeline, expected, tmp_path) -> None:  # type: ignore[no-untyped-def]
    want, keys = expected
    produce(pipeline, keys)
    poison = max(1, len(want["checkins"]) // 100)  # 1% of the good traffic
    producer = Producer({"bootstrap.servers": pipeline.servers.broker, "partitioner": "murmur2_random"})
    for i in range(poison):
        body = [b"\x07not-avro", b"\x00\x00\x00\x00\x63garbage", b"\x00\x00\x00\x00\x02\xff\xff\xff"][i % 3]
        producer.produce(pipeline.prefix + "checkins", key=f"VNX{i}".encode(), value=body + str(i).encode())
    assert producer.flush(30) == 0
    logs = [tmp_path / "w1.log"]
    pipeline.start_worker(logs[0])
    want_letters = dict(want["dead_letters"])
    want_letters["undecodable"] = poison
    assert_converges(pipeline, {**want, "dead_letters": want_letters}, logs)
