"""The naive distributed baseline: the Kafka + Faust + ClickHouse pipeline as a first attempt would write it.

- **Producer** (`NaiveProducer`): one JSON line at a time: the same per-record checks and keyed HMAC as
  the naive ingest baseline (`naive_ingest.NaiveIngest`), then `json.dumps` of the event and one
  `Producer.produce` per event (key = venue_id), librdkafka's default settings, no Avro. Refused records
  are counted and dropped (the fast path dead-letters them: the naive side does less).
- **Worker** (`build_app`, run as `naive_pipeline.py worker ...`): a Faust app whose agent reads one
  event at a time (`async for event in stream`, JSON values, no `take`), keeps the open visit of each
  (person, venue) in a Faust table (one table write per event, changelog-backed), applies docs/design.md's
  visit rule in arrival order (no reorder buffer), and writes **one ClickHouse INSERT per row**: the
  check-in, plus a provisional visit row when a visit opens and a final one when it closes. No
  occupancy windows, no identity vault, no dead-letter rows: it does less than the fast path, so a
  speed-up measured against it is a lower bound.
It is a benchmark baseline, not part of qrtrace. Progress is exported as Prometheus counters
(`qrtrace_naive_events_total{outcome}`, `qrtrace_naive_seconds_total{step}`) on --metrics-port.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from naive_ingest import (
    CLOSED_BY_CHECKOUT,
    CLOSED_BY_DWELL,
    CLOSED_BY_NEXT_CHECKIN,
    FINAL,
    PROVISIONAL,
    NaiveIngest,
    Refused,
)

from qrtrace.identity import Vault

RECENT_SCANS = 8  # scan ids remembered per (person, venue) to drop retried deliveries
CHECKIN_COLUMNS = (
    "scan_id, venue_id, person, direction, event_time_us, offset_minutes, mode, scanner_id, "
    "declaration_sealed, outcome, ingested_at_us"
)
VISIT_COLUMNS = "venue_id, person, start_us, end_us, closed_by, version, opened_by"


class _NoStore:
    def insert(self, table: str, columns: object) -> None:  # the producer never writes to the database
        raise AssertionError("the naive producer does not insert")


# -- producer ---------------------------------------------------------------------------------
class NaiveProducer:
    """Record-at-a-time edge + JSON producer."""

    def __init__(self, broker: str, topic: str, pseudonym_key: bytes, vault: Vault, dwell: Mapping[str, int]) -> None:
        from confluent_kafka import Producer

        self.topic = topic
        self.producer = Producer({"bootstrap.servers": broker, "log_level": 3})  # librdkafka defaults
        # The naive ingest baseline's own checks and HMAC (same rules, same per-record cost).
        self.checks = NaiveIngest(_NoStore(), pseudonym_key, vault, dwell, 0)
        self.vault = vault
        self.sent = 0
        self.refused: Counter[str] = Counter()

    def send(self, line: bytes) -> None:
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise Refused("not_an_object", "a record must be a JSON object")
            event = self.checks._validate(record)
        except ValueError:
            self.refused["malformed_json"] += 1
            return
        except Refused as refused:
            self.refused[refused.reason] += 1
            return
        decl = event.pop("declaration")
        event["person"] = self.checks._pseudonym(event.pop("person_id"))
        event["declaration_sealed"] = self.vault.seal(decl, "declaration") if decl else ""
        value = json.dumps(event)
        while True:  # bounded by librdkafka: each poll delivers queued messages and frees room
            try:
                self.producer.produce(self.topic, value=value.encode(), key=event["venue_id"].encode())
                break
            except BufferError:
                self.producer.poll(0.1)
        self.producer.poll(0)
        self.sent += 1

    def send_all(self, lines: Iterable[bytes]) -> None:
        for line in lines:
            self.send(line)

    def flush(self, timeout_s: float = 120.0) -> int:
        return self.producer.flush(timeout_s)


# -- worker -----------------------------------------------------------------------------------
def visit_rule(
    state: dict | None, event: Mapping[str, Any], dwell_us: int
) -> tuple[str, dict, list[tuple[int, int, int, int, str]]]:
    """docs/design.md's visit rule for one event in arrival order. Returns (outcome, new state, visit rows);
    a visit row is (start, end, closed_by, version, opened_by). State: open visit start/scan, recent scans."""
    scan, t = event["scan_id"], event["event_time_us"]
    st = dict(state) if state else {"start": None, "opened_by": "", "scans": []}
    if scan in st["scans"]:
        return "retry", st, []
    st["scans"] = [*st["scans"][-(RECENT_SCANS - 1) :], scan]
    start, rows = st["start"], []
    if event["is_in"]:
        if start is None:
            outcome = "opened"
        elif t <= start + dwell_us:
            return "repeat", st, []
        else:
            rows.append((start, start + dwell_us, CLOSED_BY_NEXT_CHECKIN, FINAL, st["opened_by"]))
            outcome = "opened"
        st["start"], st["opened_by"] = t, scan
        rows.append((t, t + dwell_us, CLOSED_BY_DWELL, PROVISIONAL, scan))
    elif start is None:
        outcome = "unmatched_checkout"
    else:
        rows.append((start, t, CLOSED_BY_CHECKOUT, FINAL, st["opened_by"]))
        st["start"], st["opened_by"] = None, ""
        outcome = "closed"
    return outcome, st, rows


def build_app(broker: str, group: str, topic_name: str, store_url: str, partitions: int, datadir: str) -> Any:
    import faust
    from clickhouse_driver import Client
    from prometheus_client import Counter as PromCounter

    from qrtrace.domain.categories import load_categories
    from qrtrace.sinks.clickhouse_store import _parse_url

    events = PromCounter("qrtrace_naive_events", "Events processed by the naive worker", ["outcome"])
    seconds = PromCounter("qrtrace_naive_seconds", "Seconds in each step of the naive agent", ["step"])
    inserts = PromCounter("qrtrace_naive_inserts", "Single-row INSERTs")
    host, port, user, password, _db = _parse_url(store_url)
    app = faust.App(
        group,
        broker=f"kafka://{broker}",
        store="memory://",
        datadir=datadir,
        topic_partitions=partitions,
        topic_replication_factor=1,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
    )
    topic = app.topic(topic_name, key_type=bytes, key_serializer="raw", value_serializer="json")
    visits = app.Table("naive_visits", default=None, partitions=partitions)  # "person|venue" -> state (JSON)
    ctx: dict[str, Any] = {}

    def setup() -> None:
        client = Client(host, port=port, user=user, password=password)
        cats = load_categories()
        rows = client.execute("SELECT venue_id, category FROM qrtrace.venues FINAL")
        ctx["dwell"] = {v: cats[c].default_dwell_minutes * 60_000_000 for v, c in rows}
        ctx["client"] = client

    @app.agent(topic)
    async def process(stream: Any) -> None:
        async for event in stream:  # one event at a time
            if not ctx:
                setup()
            started = time.perf_counter()
            key = f"{event['person']}|{event['venue_id']}"
            outcome, state, rows = visit_rule(visits.get(key), event, ctx["dwell"][event["venue_id"]])
            visits[key] = state  # one table write per event
            paired = time.perf_counter()
            client, now = ctx["client"], time.time_ns() // 1000
            if outcome != "retry":
                client.execute(
                    f"INSERT INTO qrtrace.checkins ({CHECKIN_COLUMNS}) VALUES",
                    [
                        (
                            event["scan_id"],
                            event["venue_id"],
                            event["person"],
                            1 if event["is_in"] else -1,
                            event["event_time_us"],
                            event["offset_minutes"],
                            event["mode"],
                            event["scanner_id"],
                            event["declaration_sealed"],
                            outcome,
                            now,
                        )
                    ],
                )
                inserts.inc()
            for start, end, closed_by, version, opened_by in rows:
                client.execute(
                    f"INSERT INTO qrtrace.visits_by_venue ({VISIT_COLUMNS}) VALUES",
                    [(event["venue_id"], event["person"], start, end, closed_by, version, opened_by)],
                )
                inserts.inc()
            done = time.perf_counter()
            seconds.labels("pair_and_table_write").inc(paired - started)
            seconds.labels("clickhouse_insert").inc(done - paired)
            events.labels(outcome).inc()

    return app


def run_worker(argv: Sequence[str]) -> None:
    p = argparse.ArgumentParser(prog="naive_pipeline.py worker")
    p.add_argument("--broker", required=True)
    p.add_argument("--store", required=True, help="clickhouse://host:port/qrtrace")
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--metrics-port", type=int, required=True)
    a = p.parse_args(argv)
    from faust.worker import Worker
    from prometheus_client import start_http_server

    start_http_server(a.metrics_port, addr="127.0.0.1")
    with tempfile.TemporaryDirectory(prefix="qrtrace-naive-") as datadir:
        app = build_app(a.broker, a.group, a.topic, a.store, a.partitions, datadir)
        Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "worker":
        sys.exit("usage: naive_pipeline.py worker --broker H:P --store URL --topic T --group G --metrics-port N")
    run_worker(sys.argv[2:])
