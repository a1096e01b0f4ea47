"""The Kafka gateway against the real broker, the outbox in the real ClickHouse server: `qrtrace notify ...
--gateway kafka:notifications` twice, then the topic read back from the start: each message id once, keyed
by its id, with the number and the Vietnamese text."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import orjson
import pytest
from confluent_kafka import Consumer

from tests.conftest import REPO
from tests.distributed.conftest import Pipeline

pytestmark = pytest.mark.distributed


def _read_topic(broker: str, topic: str, idle_s: float = 5.0, limit_s: float = 90.0) -> list[tuple[bytes, dict]]:
    """Every record of the topic from the start, until nothing new has come for `idle_s` (bounded)."""
    consumer = Consumer({"bootstrap.servers": broker, "group.id": f"read-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False, "log_level": 0})  # fmt: skip
    consumer.subscribe([topic])
    out: list[tuple[bytes, dict]] = []
    started = last = time.monotonic()
    try:
        while time.monotonic() - started < limit_s and (not out or time.monotonic() - last < idle_s):
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            out.append((msg.key(), orjson.loads(msg.value())))
            last = time.monotonic()
    finally:
        consumer.close()
    return out


def test_kafka_gateway_each_message_once(pipeline: Pipeline) -> None:
    env = pipeline.env
    built = subprocess.run([sys.executable, "-m", "tests.embedded.notify_store", "small-wave", "env"],
                           capture_output=True, text=True, env=env, cwd=REPO, timeout=600)  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    case = orjson.loads(built.stdout.strip().splitlines()[-1])
    args = (
        "notify",
        case["person_id"],
        "--from",
        case["from"],
        "--to",
        case["to"],
        "--until",
        case["until"],
        "--purpose",
        "F1 notification through the SMS bridge",
        "--gateway",
        "kafka:notifications",
        "--json",
    )
    first = orjson.loads(pipeline.cli(*args))
    second = orjson.loads(pipeline.cli(*args))
    assert first["sent"] == 20 and first["failed"] == 1 and first["new"] == 21  # one contact has no phone
    assert second == {**first, "new": 0}
    records = _read_topic(pipeline.servers.broker, pipeline.prefix + "notifications")
    ids = [doc["message_id"] for _, doc in records]
    assert len(ids) == 20 == len(set(ids))
    assert all(key.decode() == doc["message_id"] for key, doc in records)
    assert all(doc["to"].startswith("09") and doc["text"].startswith("Thông báo y tế") for _, doc in records)
