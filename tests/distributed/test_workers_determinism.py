"""The distributed tier stores exactly what the embedded runtime stores from the same check-ins, whatever the
number of workers and whatever happens to them: a held-out-shaped day (deliveries up to six hours late,
retries, repeat scans, missing check-outs, bad records) through 1 and 4 workers, with a worker SIGKILLed
mid-stream, with a worker joining mid-stream, and with a worker stopped by SIGTERM while the broker is
down (it must exit within 10 s; the next owner processes what it had not committed). Check-in outcomes,
visits and dead letters are compared row for row."""

from __future__ import annotations

import os
import signal
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.distributed.helpers import CHECKINS, SIM_CLOCK, VISITS, dead_letter_counts, rows, server_result, wait_for

pytestmark = pytest.mark.distributed
START = datetime(2021, 7, 21, tzinfo=timezone(timedelta(hours=7)))


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The day's lines and venues, and what the embedded runtime stores from them (same keys, same clock)."""
    from qrtrace.domain.venues import write_venues_csv
    from qrtrace.embedded import EmbeddedRuntime
    from qrtrace.producers.simulator import SimulationConfig, build_district, checkin_batches
    from qrtrace.settings import Settings

    base = tmp_path_factory.mktemp("held-out")
    config = SimulationConfig(seed=909, start=START, days=1, population=3_000, late_share=0.05,
                              max_late_minutes=360)  # fmt: skip
    district = build_district(config)
    lines = [line for batch in checkin_batches(district, 5_000) for line in batch]
    events, venues, keys = base / "events.jsonl", base / "venues.csv", base / "keys.json"
    events.write_bytes(b"\n".join(lines) + b"\n")
    write_venues_csv(venues, district.venues)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRuntime(Settings(store=tmp, key_file=keys, now=SIM_CLOCK)) as rt:
        rt.register_venues(district.venues)
        rt.ingest([lines[i : i + 5_000] for i in range(0, len(lines), 5_000)], source="embedded")
        want = {"visits": rows(rt.store, VISITS), "checkins": rows(rt.store, CHECKINS),
                "dead_letters": dead_letter_counts(rt.store)}  # fmt: skip
    assert len(want["visits"]) > 3_000
    return {"events": events, "venues": venues, "keys": keys, "want": want}


def send(pipeline, day: dict) -> None:  # type: ignore[no-untyped-def]
    pipeline.keys = day["keys"]
    pipeline.cli("venues", "import", str(day["venues"]))
    pipeline.cli("produce", str(day["events"]))


def visits_stored(pipeline) -> int:  # type: ignore[no-untyped-def]
    from qrtrace.sinks.clickhouse_store import ClickHouseStore

    try:
        store = ClickHouseStore(pipeline.servers.store_url)
    except Exception:  # the database is starting or away
        return 0
    try:
        return int(store.query("SELECT count() AS n FROM qrtrace.checkin_outcomes")["n"][0])
    finally:
        store.close()


def mid_stream(pipeline, day: dict) -> None:  # type: ignore[no-untyped-def]
    total = len(day["want"]["checkins"])
    n = wait_for(lambda: visits_stored(pipeline), lambda n: n >= 0.05 * total, timeout_s=180, every_s=0.1)
    assert 0 < n < total, f"expected to act mid-stream, saw {n} outcome rows of {total} check-ins"


def assert_same_as_embedded(pipeline, day: dict, logs: list[Path]) -> None:  # type: ignore[no-untyped-def]
    want = day["want"]
    got = wait_for(lambda: server_result(pipeline.servers.store_url), lambda r: r == want, timeout_s=300)
    tail = "\n".join(p.read_text(errors="replace")[-1500:] for p in logs)
    for table in ("visits", "checkins"):
        missing, extra = want[table] - got[table], got[table] - want[table]
        assert not missing and not extra, f"{table}: {len(missing)} missing, {len(extra)} extra\n{tail}"
    assert got["dead_letters"] == want["dead_letters"]


@pytest.mark.parametrize("workers", [1, 4])
def test_any_number_of_workers_stores_what_the_embedded_runtime_stores(pipeline, day, tmp_path, workers) -> None:  # type: ignore[no-untyped-def]
    send(pipeline, day)
    logs = [tmp_path / f"w{i}.log" for i in range(workers)]
    for log in logs:
        pipeline.start_worker(log)
    assert_same_as_embedded(pipeline, day, logs)


def test_a_worker_killed_mid_stream(pipeline, day, tmp_path) -> None:  # type: ignore[no-untyped-def]
    send(pipeline, day)
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    victim = pipeline.start_worker(logs[0])
    pipeline.start_worker(logs[1])
    mid_stream(pipeline, day)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    assert_same_as_embedded(pipeline, day, logs)


def test_a_worker_joining_mid_stream(pipeline, day, tmp_path) -> None:  # type: ignore[no-untyped-def]
    send(pipeline, day)
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    pipeline.start_worker(logs[0])
    mid_stream(pipeline, day)
    pipeline.start_worker(logs[1])
    assert_same_as_embedded(pipeline, day, logs)


def test_sigterm_with_the_broker_down_stops_within_ten_seconds(pipeline, day, tmp_path) -> None:  # type: ignore[no-untyped-def]
    send(pipeline, day)
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    worker = pipeline.start_worker(logs[0])
    mid_stream(pipeline, day)
    pipeline.servers.stop_broker()
    try:
        time.sleep(2)
        asked = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        took = time.monotonic() - asked
    finally:
        pipeline.servers.start_broker()
    assert took < 10, f"the worker took {took:.1f} s to stop after SIGTERM with the broker down"
    pipeline.start_worker(logs[1])  # the next owner: what the first had not committed is processed again
    assert_same_as_embedded(pipeline, day, logs)
