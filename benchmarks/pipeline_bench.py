"""Distributed pipeline benchmark: producer -> Kafka -> Faust workers -> ClickHouse server, against a naive one.

    .venv/bin/python benchmarks/pipeline_bench.py [--events N] [--workers 2] [--naive-events K]
                                                  [--out benchmarks/results/pipeline.json]

1. Starts its own Kafka (KRaft) and ClickHouse server(s) under a temp dir with infra/ scripts (stopped
   at the end, also on failure); every run gets fresh topics (unique prefix, 4 partitions) and an empty
   ClickHouse server.
2. Simulates ~N check-ins as JSON lines in memory (not timed); the embedded pipeline (chDB, same key
   file) stores the same input: that is the expected result (not timed).
3. Runs, each on fresh topics and an empty server with the venues registered:
   - backlog: produce everything (edge + Avro + Kafka, flush included), then start W `qrtrace worker`
     processes and time how fast they drain it;
   - concurrent (the realistic end-to-end figure): W workers already running and assigned, then
     produce; time from the first produce to the last check-in row stored;
   - paced: a steady offered load below capacity, for the end-to-end latency histogram;
   - naive (naive_pipeline.py): JSON one event at a time, a Faust table write per event, one INSERT
     per row, over K events within a time budget;
   - profile: pyinstrument over the producer and over one worker draining a backlog.
4. Compares stored check-ins and visits (FINAL) with the embedded result: lost, duplicated, replaced.
Writes a JSON result and a PNG chart; exits 1 if rows were lost or duplicated.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from charts import log_bar_chart
from naive_pipeline import NaiveProducer

from qrtrace.distributed import produce_lines
from qrtrace.domain.categories import load_categories
from qrtrace.identity import Vault, load_or_create_keyring
from qrtrace.producers.simulator import VN_TZ, SimulationConfig, build_district, checkin_batches, expected_event_count
from qrtrace.settings import Settings
from qrtrace.sinks.clickhouse_store import ClickHouseStore
from qrtrace.sinks.writer import StoreWriter

REPO = Path(__file__).resolve().parents[1]
INFRA = REPO / "infra"
RESULTS = Path(__file__).resolve().parent / "results"
TARGET_EVENTS_PER_S = 20_000  # the project's issue: sustained end to end
TARGET_RATIO = 10
SIM_START = datetime(2021, 7, 19, tzinfo=VN_TZ)  # a Monday of the July 2021 wave: reproducible traffic
# The simulated days are replayed: the receiving clock reads a time just after them (QRTRACE_NOW).
# Twenty days after the start: every day of a 2M-event run (19 days) is in the past and within the 21-day
# retention, so none is refused at the edge (with ten, days 11-19 were from the future: all dead letters).
REPLAY_CLOCK = (SIM_START + timedelta(days=20)).isoformat()
PARTITIONS = 4
# What a reader sees: current outcomes, and visits not withdrawn (the outcome on arrival depends on the order).
CHECKINS = "SELECT scan_id, venue_id, person, event_time_us, outcome FROM qrtrace.checkin_outcomes FINAL"
VISITS = ("SELECT venue_id, person, start_us, end_us, opened_by FROM (SELECT * FROM qrtrace.visits_by_venue FINAL) "
          "WHERE withdrawn = 0")
DEAD_LETTERS = "SELECT reason, count() AS n FROM qrtrace.dead_letters FINAL GROUP BY reason"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MACHINE_NOTE = "shared 2-core machine: broker, workers and database share these 2 cores"


def log(msg: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {msg}", flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=2_000_000, help="about this many simulated events (default 2M)")
    p.add_argument("--population", type=int, default=35_000, help="simulated residents (default 35,000; see README)")
    p.add_argument("--days", type=int, default=None, help="simulated days (default: enough to reach --events)")
    p.add_argument("--seed", type=int, default=2021)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--naive-events", type=int, default=20_000, help="events offered to the naive baseline")
    p.add_argument("--naive-seconds", type=float, default=60.0, help="time budget of the naive baseline")
    p.add_argument(
        "--latency-rate",
        type=int,
        default=None,
        help="offered events/s of the paced run (default: half the concurrent end-to-end rate)",
    )
    p.add_argument("--latency-seconds", type=float, default=30.0, help="length of the paced run (0 = skip)")
    p.add_argument("--profile-events", type=int, default=60_000, help="events of the profile runs (0 = skip)")
    p.add_argument("--no-backlog", action="store_true", help="skip the produce-then-consume run")
    p.add_argument("--timeout", type=float, default=None, help="bound on each wait for stored rows (seconds)")
    p.add_argument("--tmp-dir", type=Path, default=None, help="where server state and stores go (default: tmp)")
    p.add_argument("--out", type=Path, default=RESULTS / "pipeline.json")
    p.add_argument("--chart", type=Path, default=None, help="PNG chart (default: next to --out, .png)")
    p.add_argument("--chart-from", type=Path, default=None, help="only redraw the chart from this result JSON")
    a = p.parse_args(argv)
    if a.events < 1000 or a.workers < 1 or a.workers > PARTITIONS or (a.days is not None and a.days < 1):
        p.error(f"--events >= 1000, 1 <= --workers <= {PARTITIONS}, --days >= 1")
    return a


def rate(n: float, seconds: float) -> float:
    return round(n / seconds, 1) if seconds > 0 else 0.0


# -- servers ----------------------------------------------------------------------------------
def script(*args: object, timeout: float = 600) -> str:
    proc = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "QRTRACE_PYTHON": sys.executable},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.stdout.strip()


class Infra:
    """Kafka + ClickHouse servers of this run, each stopped by the pid its start script recorded."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.kafka_dir = state / "kafka"
        self.clickhouse_dirs: list[Path] = []
        self.broker = ""

    def start_kafka(self) -> str:
        self.broker = script(INFRA / "kafka" / "start.sh", self.kafka_dir).splitlines()[-1]
        return self.broker

    def fresh_clickhouse(self, name: str) -> str:
        """Stop the previous server (if any) and start an empty one; returns its store URL."""
        if self.clickhouse_dirs:
            script(INFRA / "clickhouse" / "stop.sh", self.clickhouse_dirs[-1], timeout=120)
        script(INFRA / "clickhouse" / "install.sh")
        path = self.state / f"clickhouse-{name}"
        self.clickhouse_dirs.append(path)
        script(INFRA / "clickhouse" / "start.sh", path, timeout=120)
        return (path / "url").read_text().strip()

    def pids(self) -> dict[str, int]:
        out = {}
        for name, f in (
            ("kafka broker", self.kafka_dir / "broker.pid"),
            ("clickhouse server", self.clickhouse_dirs[-1] / "server.pid" if self.clickhouse_dirs else None),
        ):
            if f is not None and f.exists():
                out[name] = int(f.read_text().strip())
        return out

    def stop_all(self) -> None:
        for path in self.clickhouse_dirs:
            if path.exists():
                subprocess.run([str(INFRA / "clickhouse" / "stop.sh"), str(path)], timeout=120, capture_output=True)
        if self.kafka_dir.exists():
            subprocess.run([str(INFRA / "kafka" / "stop.sh"), str(self.kafka_dir)], timeout=120, capture_output=True)


def create_topics(broker: str, prefix: str) -> None:
    script(
        sys.executable,
        INFRA / "kafka" / "admin.py",
        "topics",
        "--bootstrap",
        broker,
        "--partitions",
        str(PARTITIONS),
        "--prefix",
        prefix,
    )


def register_venues(url: str, venues: list) -> None:
    with ClickHouseStore(url) as store:
        StoreWriter(store).venues(venues, time.time_ns() // 1000)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) from /proc; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def cpu_snapshot(infra: Infra, workers: Workers | None) -> dict[str, float]:
    snap = {"bench process (producer)": time.process_time()}
    for name, pid in infra.pids().items():
        snap[name] = cpu_seconds(pid)
    if workers:
        for slot in range(len(workers.procs)):
            snap[f"worker {slot + 1}"] = workers.cpu(slot)
    return snap


def cpu_delta(before: dict[str, float], after: dict[str, float], wall: float) -> dict[str, Any]:
    used = {k: round(after[k] - before.get(k, 0.0), 2) for k in after}
    total = round(sum(used.values()), 2)
    return {
        "seconds": used,
        "total_cpu_seconds": total,
        "wall_seconds": round(wall, 2),
        "cores_busy": round(total / wall, 2) if wall > 0 else None,
    }


# -- metrics ----------------------------------------------------------------------------------
def scrape(port: int) -> dict[tuple[str, tuple], float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[tuple[str, tuple], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def metric(samples: dict, name: str, **labels: str) -> float:
    want = tuple(sorted(labels.items()))
    return sum(v for (n, lab), v in samples.items() if n == name and all(x in lab for x in want))


def received(samples_list: list[dict]) -> float:
    """Check-in events the workers took from Kafka (summed over workers)."""
    return sum(metric(s, "qrtrace_events_total", stage="worker", outcome="received") for s in samples_list)


def naive_processed(samples_list: list[dict]) -> float:
    return sum(metric(s, "qrtrace_naive_events_total") for s in samples_list)


def histogram(samples_list: list[dict], name: str, **labels: str) -> dict[str, Any]:
    """Buckets summed over workers: {'buckets': [(le, cumulative count)], 'count', 'sum'}."""
    buckets: dict[float, float] = {}
    for samples in samples_list:
        for (n, lab), v in samples.items():
            d = dict(lab)
            if n == f"{name}_bucket" and all(d.get(k) == x for k, x in labels.items()):
                le = float(d["le"])
                buckets[le] = buckets.get(le, 0.0) + v
    return {
        "buckets": sorted(buckets.items()),
        "count": sum(metric(s, f"{name}_count", **labels) for s in samples_list),
        "sum": sum(metric(s, f"{name}_sum", **labels) for s in samples_list),
    }


def quantile(hist: dict[str, Any], q: float) -> float | None:
    """Like Prometheus' histogram_quantile: linear inside the bucket; the top finite bound if beyond it."""
    buckets = hist["buckets"]
    total = buckets[-1][1] if buckets else 0
    if not total:
        return None
    rank, prev_le, prev_n = q * total, 0.0, 0.0
    for le, n in buckets:
        if n >= rank:
            if math.isinf(le):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_n) / (n - prev_n) if n > prev_n else 1.0)
        prev_le, prev_n = le, n
    return prev_le


# -- workers ----------------------------------------------------------------------------------
class Workers:
    """W worker subprocesses of one pipeline (own consumer group), each with its own metrics port.

    Like a process supervisor (systemd's Restart=on-failure), a worker that exits is restarted on the
    same port, at most `max_restarts` times per run; each restart is recorded with the error its log
    ends with. Metrics and CPU of earlier incarnations are carried over (as of the last check, <= 0.5 s
    before the exit), so per-worker figures cover the whole run."""

    def __init__(
        self, argv: Callable[[int], list[str]], env: dict[str, str], logs: Path, count: int, max_restarts: int = 3
    ) -> None:
        self.argv, self.env, self.logs, self.count, self.max_restarts = argv, env, logs, count, max_restarts
        self.procs: list[subprocess.Popen] = []
        self.ports: list[int] = []
        self.restarts: list[dict[str, Any]] = []
        self.started_at = time.monotonic()
        self._retired: list[dict] = []  # per slot: summed samples of exited incarnations
        self._last: list[dict] = []  # per slot: the latest scrape of the running incarnation
        self._cpu_base: list[float] = []
        self._cpu_last: list[float] = []
        self._log_start: list[int] = []  # per slot: log size when the running incarnation started

    def _spawn(self, slot: int) -> subprocess.Popen:
        fh = (self.logs / f"worker-{slot + 1}.log").open("ab")
        self._log_start[slot] = fh.tell()
        env = {**self.env, "QRTRACE_METRICS_PORT": str(self.ports[slot])}
        return subprocess.Popen(self.argv(self.ports[slot]), env=env, stdout=fh, stderr=subprocess.STDOUT)

    def start(self) -> None:
        self.started_at = time.monotonic()
        for slot in range(self.count):
            self.ports.append(free_port())
            self._retired.append({})
            self._last.append({})
            self._cpu_base.append(0.0)
            self._cpu_last.append(0.0)
            self._log_start.append(0)
            self.procs.append(self._spawn(slot))

    def check_alive(self) -> None:
        """Restart workers that exited (bounded); refresh the carried-over metrics and CPU."""
        for slot, proc in enumerate(self.procs):
            if proc.poll() is None:
                self._cpu_last[slot] = cpu_seconds(proc.pid) or self._cpu_last[slot]
                with contextlib.suppress(OSError):
                    self._last[slot] = scrape(self.ports[slot])
                continue
            with (self.logs / f"worker-{slot + 1}.log").open("rb") as f:
                f.seek(self._log_start[slot])
                text = f.read().decode(errors="replace")
            errors = [ln for ln in text.splitlines() if "Error" in ln or "CRITICAL" in ln or "Exception" in ln]
            self.restarts.append(
                {
                    "worker": slot + 1,
                    "exit_code": proc.returncode,
                    "after_s": round(time.monotonic() - self.started_at, 1),
                    "first_error_lines": errors[:6],
                    "last_error_lines": errors[-3:],
                }
            )
            if len(self.restarts) > self.max_restarts:
                raise RuntimeError(
                    f"worker {slot + 1} exited with {proc.returncode} (restart limit reached):\n{text[-3000:]}"
                )
            log(f"worker {slot + 1} exited with {proc.returncode}; restarting it ({errors[:1]})")
            self._retired[slot] = add_samples(self._retired[slot], self._last[slot])
            self._last[slot] = {}
            self._cpu_base[slot] += self._cpu_last[slot]
            self._cpu_last[slot] = 0.0
            self.procs[slot] = self._spawn(slot)

    def cpu(self, slot: int) -> float:
        return self._cpu_base[slot] + cpu_seconds(self.procs[slot].pid)

    def scrape(self) -> list[dict]:
        out = []
        for slot, port in enumerate(self.ports):
            with contextlib.suppress(OSError):
                self._last[slot] = scrape(port)
            out.append(add_samples(self._retired[slot], self._last[slot]))
        return out

    def tails(self, chars: int = 1500) -> str:
        return "\n".join(
            f"--- worker {i} log ---\n" + (self.logs / f"worker-{i}.log").read_text(errors="replace")[-chars:]
            for i in range(1, len(self.procs) + 1)
            if (self.logs / f"worker-{i}.log").exists()
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(sig)
        for proc in self.procs:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)


def add_samples(a: dict, b: dict) -> dict:
    """Counters and histogram series of two incarnations of a worker, added (gauges too, harmlessly)."""
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0.0) + v
    return out


def wait_assigned(broker: str, group: str, topic: str, members: int, workers: Workers, timeout: float) -> float:
    """Until the group is stable with `members` members holding every partition of `topic`; returns seconds."""
    from confluent_kafka import ConsumerGroupState, KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": broker, "log_level": 0})
    started = time.monotonic()
    while time.monotonic() - started < timeout:  # bounded
        workers.check_alive()
        try:
            desc = admin.describe_consumer_groups([group], request_timeout=5)[group].result()
            held = {
                tp.partition
                for m in desc.members
                for tp in (m.assignment.topic_partitions if m.assignment else [])
                if tp.topic == topic
            }
            if desc.state == ConsumerGroupState.STABLE and len(desc.members) == members and len(held) == PARTITIONS:
                return time.monotonic() - started
        except KafkaException:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"group {group} did not get all {PARTITIONS} partitions of {topic} within {timeout:.0f} s")


def poll_until(
    probe: Callable[[], float], target: float, timeout: float, every: float, alive: Callable[[], None]
) -> tuple[float, float]:
    """Poll until probe() >= target; returns (value, monotonic time it was first seen) or raises on timeout."""
    deadline = time.monotonic() + timeout
    while True:  # bounded by the deadline
        value = probe()
        now = time.monotonic()
        if value >= target:
            return value, now
        if now > deadline:
            raise TimeoutError(f"reached {value:,.0f} of {target:,.0f} within {timeout:.0f} s")
        alive()
        time.sleep(every)


def scalar(store: ClickHouseStore, sql: str) -> int:
    return int(store.query(sql)["n"][0])


def rows(store: Any, sql: str) -> set[tuple]:
    result = store.query(sql)
    return set(zip(*result.values(), strict=True))


def dead_letter_counts(store: Any) -> dict[str, int]:
    result = store.query(DEAD_LETTERS)
    return {r: int(n) for r, n in zip(result["reason"], result["n"], strict=True)}


# -- expected result --------------------------------------------------------------------------
def embedded_expected(settings: Settings, venues: list, batches: list[list[bytes]]) -> dict[str, Any]:
    from qrtrace.embedded import EmbeddedRuntime

    started = time.perf_counter()
    with EmbeddedRuntime(settings) as rt:
        rt.register_venues(venues)
        report = rt.ingest(batches, source="embedded")
        result = {
            "checkins": rows(rt.store, CHECKINS),
            "visits": rows(rt.store, VISITS),
            "dead_letters": dead_letter_counts(rt.store),
        }
    result["report"] = {
        "received": report.received,
        "accepted": report.accepted,
        "deduplicated": report.deduplicated,
        "dead_lettered": report.dead_lettered,
        "seconds": round(time.perf_counter() - started, 1),
    }
    return result


def compare(url: str, expected: dict[str, Any]) -> dict[str, Any]:
    with ClickHouseStore(url) as store:
        got_c, got_v, got_d = rows(store, CHECKINS), rows(store, VISITS), dead_letter_counts(store)
        raw_c = scalar(store, "SELECT count() AS n FROM qrtrace.checkins")
        raw_v = scalar(store, "SELECT count() AS n FROM qrtrace.visits_by_venue")
        dup_v = scalar(
            store,
            "SELECT sum(c - 1) AS n FROM (SELECT count() AS c FROM qrtrace.visits_by_venue "
            "GROUP BY venue_id, start_us, person, opened_by, version, end_us, closed_by HAVING c > 1)",
        )
        occupancy = scalar(store, "SELECT count() AS n FROM qrtrace.occupancy")
    exp_c, exp_v = expected["checkins"], expected["visits"]
    c = {
        "expected": len(exp_c),
        "stored_final": len(got_c),
        "lost": len(exp_c - got_c),
        "extra": len(got_c - exp_c),
        "raw_rows": raw_c,
        "duplicate_rows": raw_c - len(got_c),
    }
    v = {
        "expected": len(exp_v),
        "stored_final": len(got_v),
        "lost": len(exp_v - got_v),
        "extra": len(got_v - exp_v),
        "raw_rows": raw_v,
        "exact_duplicate_rows": dup_v,
        "replaced_rows": raw_v - len(got_v) - dup_v,
    }
    return {
        "checkins": c,
        "visits": v,
        "dead_letters": {
            "expected": expected["dead_letters"],
            "stored": got_d,
            "same": got_d == expected["dead_letters"],
        },
        "occupancy_raw_rows": occupancy,
        "lost": c["lost"] + v["lost"],
        "duplicated": c["extra"] + c["duplicate_rows"] + v["extra"] + v["exact_duplicate_rows"],
        "replaced_rows": v["replaced_rows"],
        "note": "raw counts are taken right after the run; background merges may already have folded some "
        "replaced or duplicate rows, so raw-minus-FINAL figures are lower bounds",
    }


# -- one measured pipeline run ----------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path, infra: Infra, key_file: Path, venues: list) -> None:
        self.args, self.tmp, self.infra, self.key_file, self.venues = args, tmp, infra, key_file, venues
        self.run_id = uuid.uuid4().hex[:6]
        # Worker logs outlive the run (a crash is worth reading); everything else goes with the temp dir.
        self.log_dir = Path(tempfile.gettempdir()) / f"qrtrace-pipeline-bench-logs-{self.run_id}"
        log(f"worker logs in {self.log_dir}")

    def pipeline(self, name: str) -> tuple[str, Settings, Path]:
        """Fresh server with the venues, fresh topics; returns (store URL, producer settings, log dir)."""
        url = self.infra.fresh_clickhouse(name)
        register_venues(url, self.venues)
        prefix = f"b{self.run_id}.{name}."
        create_topics(self.infra.broker, prefix)
        settings = Settings(
            now=REPLAY_CLOCK,
            store=url,
            key_file=self.key_file,
            broker=self.infra.broker,
            topic_prefix=prefix,
            worker_group=f"{prefix}workers",
            partitions=PARTITIONS,
            actor="bench",
        )
        logs = self.log_dir / name
        logs.mkdir(parents=True, exist_ok=True)
        return url, settings, logs

    def workers(
        self, settings: Settings, logs: Path, count: int, argv: Callable[[int], list[str]] | None = None
    ) -> Workers:
        env = {
            **os.environ,
            "QRTRACE_BROKER": settings.broker or "",
            "QRTRACE_STORE": settings.store,
            "QRTRACE_TOPIC_PREFIX": settings.topic_prefix,
            "QRTRACE_WORKER_GROUP": settings.worker_group,
            "QRTRACE_KEY_FILE": str(self.key_file),
            "QRTRACE_PARTITIONS": str(PARTITIONS),
            "QRTRACE_NOW": REPLAY_CLOCK,
        }
        qrtrace_bin = str(Path(sys.executable).parent / "qrtrace")
        return Workers(argv or (lambda port: [qrtrace_bin, "worker"]), env, logs, count)

    def produce(self, settings: Settings, batches: Sequence[Sequence[bytes]]) -> dict[str, Any]:
        cpu0, started = time.process_time(), time.perf_counter()
        counts = produce_lines(settings, batches)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu0
        events = sum(map(len, batches))
        return {
            "events": events,
            "seconds": round(seconds, 2),
            "events_per_s": rate(events, seconds),
            "cpu_seconds": round(cpu, 2),
            **counts,
        }

    def measured(self, name: str, batches: list[list[bytes]], expected: dict[str, Any], concurrent: bool) -> dict:
        a = self.args
        events = sum(map(len, batches))
        timeout = a.timeout or max(300.0, events / 500)
        url, settings, logs = self.pipeline(name)
        workers = self.workers(settings, logs, a.workers)
        topic = settings.topic_prefix + "checkins"
        n_checkins, n_visits = len(expected["checkins"]), len(expected["visits"])
        n_dead = sum(expected["dead_letters"].values())
        out: dict[str, Any] = {"variant": name, "events": events, "workers": a.workers}
        poll_store = ClickHouseStore(url)
        try:
            if concurrent:
                workers.start()
                out["workers_ready_seconds"] = round(
                    wait_assigned(settings.broker, settings.worker_group, topic, a.workers, workers, 180), 2
                )
                cpu0, t0 = cpu_snapshot(self.infra, workers), time.monotonic()
                out["producer"] = self.produce(settings, batches)
                t_window = t0
            else:
                cpu0, t0 = cpu_snapshot(self.infra, None), time.monotonic()
                out["producer"] = self.produce(settings, batches)
                t_produced = time.monotonic()
                out["producer_cpu"] = cpu_delta(cpu0, cpu_snapshot(self.infra, None), t_produced - t0)
                workers.start()
                out["workers_ready_seconds"] = round(
                    wait_assigned(settings.broker, settings.worker_group, topic, a.workers, workers, 180), 2
                )
                t_window = time.monotonic()
                cpu0 = cpu_snapshot(self.infra, workers)
            log(
                f"{name}: produced {events:,} events at {out['producer']['events_per_s']:,.0f}/s; waiting for "
                f"{n_checkins:,} check-ins in ClickHouse"
            )
            count_sql = "SELECT count() AS n FROM qrtrace.checkins"
            _, t_checkins = poll_until(
                lambda: scalar(poll_store, count_sql), n_checkins, timeout, 0.5, workers.check_alive
            )
            cpu1 = cpu_snapshot(self.infra, workers)
            samples_at_done = workers.scrape()
            visits_sql = "SELECT count() AS n FROM (SELECT * FROM qrtrace.visits_by_venue FINAL) WHERE withdrawn = 0"
            _, t_visits = poll_until(lambda: scalar(poll_store, visits_sql), n_visits, 120, 1.0, workers.check_alive)
            dl_sql = "SELECT count() AS n FROM qrtrace.dead_letters FINAL"
            _, t_dead = poll_until(lambda: scalar(poll_store, dl_sql), n_dead, 120, 1.0, workers.check_alive)
            samples = workers.scrape()
        except BaseException:
            log(f"{name}: failed; worker logs:\n{workers.tails()}")
            raise
        finally:
            poll_store.close()
            workers.stop()
        out["worker_restarts"] = workers.restarts
        window = t_checkins - t_window
        e2e = t_checkins - t0
        per_worker = [metric(s, "qrtrace_events_total", stage="worker", outcome="received") for s in samples_at_done]
        written_checkins = sum(metric(s, "qrtrace_events_total", stage="pairing") for s in samples_at_done)
        written_visits = sum(metric(s, "qrtrace_events_total", stage="sink", outcome="visits") for s in samples_at_done)
        e2e_hist = histogram(samples, "qrtrace_end_to_end_seconds")
        out.update(
            {
                "e2e_seconds": round(e2e, 2),
                "e2e_events_per_s": rate(events, e2e),
                "window_seconds": round(window, 2),
                "window_events_per_s": rate(events, window),
                "window_note": "concurrent: first produce -> last check-in row stored (same as e2e); backlog: "
                "workers assigned -> last check-in row stored (drain rate)",
                "visits_complete_after_s": round(t_visits - t0, 2),
                "dead_letters_complete_after_s": round(t_dead - t0, 2),
                "per_worker_received": [int(r) for r in per_worker],
                "per_worker_events_per_s": [rate(r, window) for r in per_worker],
                "sink_rows": {"checkins": int(written_checkins), "visits": int(written_visits)},
                "cpu": cpu_delta(cpu0, cpu1, t_checkins - (t0 if concurrent else t_window)),
                "latency": latency_summary(e2e_hist),
                "worker_metrics": worker_breakdown(samples),
            }
        )
        log(f"{name}: comparing stored rows with the embedded result")
        out["comparison"] = compare(url, expected)
        occ = out["comparison"]["occupancy_raw_rows"]
        out["sink_rows"]["occupancy_raw_lower_bound"] = occ
        out["sink_rows_per_s"] = rate(written_checkins + written_visits + occ, window)
        return out

    def paced(self, lines: list[bytes], offered: int, seconds: float) -> dict[str, Any]:
        """A steady offered load (below capacity): latency, not throughput."""
        a = self.args
        n = min(len(lines), int(offered * seconds))
        _url, settings, logs = self.pipeline("paced")
        workers = self.workers(settings, logs, a.workers)
        chunk = max(1, offered // 20)
        try:
            workers.start()
            wait_assigned(
                settings.broker, settings.worker_group, settings.topic_prefix + "checkins", a.workers, workers, 180
            )
            t0 = time.monotonic()

            def paced_batches() -> Iterator[list[bytes]]:
                for i in range(0, n, chunk):  # bounded: n / chunk steps
                    due = t0 + i / offered
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    yield lines[i : i + chunk]

            counts = produce_lines(settings, paced_batches())
            produced_s = time.monotonic() - t0
            poll_until(lambda: received(workers.scrape()), counts["sent"], 120, 0.5, workers.check_alive)
            samples = workers.scrape()
        finally:
            workers.stop()
        hist = histogram(samples, "qrtrace_end_to_end_seconds")
        return {
            "offered_events_per_s": offered,
            "events": n,
            "produce_seconds": round(produced_s, 2),
            "achieved_offered_events_per_s": rate(n, produced_s),
            "latency": latency_summary(hist),
        }

    def naive(self, lines: list[bytes]) -> dict[str, Any]:
        a = self.args
        lines = lines[: a.naive_events]
        url, settings, logs = self.pipeline("naive")
        topic = settings.topic_prefix + "checkins"
        script_path = str(Path(__file__).resolve().parent / "naive_pipeline.py")
        workers = self.workers(
            settings,
            logs,
            a.workers,
            lambda port: [
                sys.executable,
                script_path,
                "worker",
                "--broker",
                self.infra.broker,
                "--store",
                url,
                "--topic",
                topic,
                "--group",
                settings.worker_group,
                "--partitions",
                str(PARTITIONS),
                "--metrics-port",
                str(port),
            ],
        )
        keys = load_or_create_keyring(self.key_file)
        cats = load_categories()
        dwell = {v.venue_id: cats[v.category].default_dwell_minutes * 60_000_000 for v in self.venues}
        producer = NaiveProducer(self.infra.broker, topic, keys.pseudonym_key, Vault(keys.vault_key), dwell)
        try:
            workers.start()
            wait_assigned(self.infra.broker, settings.worker_group, topic, a.workers, workers, 180)
            cpu0, t0 = cpu_snapshot(self.infra, workers), time.monotonic()
            producer.send_all(lines)
            left = producer.flush(120)
            produced_s = time.monotonic() - t0
            if left:
                raise RuntimeError(f"naive producer: {left} messages not delivered")
            deadline, last, t_last = t0 + a.naive_seconds, -1.0, t0
            while True:  # bounded by the time budget
                done = naive_processed(workers.scrape())
                now = time.monotonic()
                if done != last:
                    last, t_last = done, now
                if done >= producer.sent or now >= deadline:
                    break
                workers.check_alive()
                time.sleep(0.5)
            stopped_by_budget = done < producer.sent
            t_end = now if stopped_by_budget else t_last
            cpu1 = cpu_snapshot(self.infra, workers)
            samples = workers.scrape()
        finally:
            workers.stop()
        with ClickHouseStore(url) as store:
            stored = scalar(store, "SELECT count() AS n FROM qrtrace.checkins")
            stored_visits = scalar(
                store, "SELECT count() AS n FROM (SELECT * FROM qrtrace.visits_by_venue FINAL) WHERE withdrawn = 0"
            )
        done = naive_processed(samples)
        outcomes: dict[str, int] = {}
        steps: dict[str, float] = {}
        for s in samples:
            for (n, lab), v in s.items():
                if n == "qrtrace_naive_events_total":
                    outcomes[dict(lab)["outcome"]] = outcomes.get(dict(lab)["outcome"], 0) + int(v)
                elif n == "qrtrace_naive_seconds_total":
                    steps[dict(lab)["step"]] = round(steps.get(dict(lab)["step"], 0.0) + v, 2)
        inserts = int(sum(metric(s, "qrtrace_naive_inserts_total") for s in samples))
        # Input lines accounted: worker-processed events plus the producer's refused lines in proportion.
        input_events = done * len(lines) / producer.sent if producer.sent else 0
        elapsed = t_end - t0
        return {
            "events_offered": len(lines),
            "events": round(input_events),
            "events_processed_by_workers": int(done),
            "sent": producer.sent,
            "refused_at_producer": dict(producer.refused),
            "produce_seconds": round(produced_s, 2),
            "producer_events_per_s": rate(len(lines), produced_s),
            "seconds": round(elapsed, 2),
            "events_per_s": rate(input_events, elapsed),
            "stopped_by_time_budget": stopped_by_budget,
            "time_budget_seconds": a.naive_seconds,
            "workers": a.workers,
            "outcomes": outcomes,
            "inserts": inserts,
            "worker_step_seconds": steps,
            "stored_checkin_rows": stored,
            "stored_visits_final": stored_visits,
            "checks": {"stored check-in rows >= processed non-retry events": stored >= done - outcomes.get("retry", 0)},
            "cpu": cpu_delta(cpu0, cpu1, elapsed),
        }

    def core_alone(self, lines: list[bytes], batch_events: int) -> dict[str, Any]:
        """The workers' own code without Faust: `CheckinWorker.handle` over the same Avro messages, fed in
        take()-sized batches in process, once with ClickHouse inserts and once with inserts discarded.
        The venue-state table is a dict (no changelog): what is left of a worker's CPU is Faust/aiokafka."""
        import asyncio
        from types import SimpleNamespace

        from qrtrace.identity import Pseudonymiser
        from qrtrace.producers.edge import Edge
        from qrtrace.producers.kafka_producer import checkin_messages
        from qrtrace.schemas.registry import CHECKIN_BUNDLES_SUBJECT, default_registry
        from qrtrace.sinks.resilient import RetryingStore
        from qrtrace.sinks.stores import open_store
        from qrtrace.stream_processors.faust_worker import CheckinWorker

        n = min(len(lines), self.args.profile_events)
        url, settings, _logs = self.pipeline("core")
        keys = load_or_create_keyring(self.key_file)
        registry = default_registry()
        schema_id, schema = registry.latest(CHECKIN_BUNDLES_SUBJECT)
        edge = Edge(Pseudonymiser(keys.pseudonym_key), Vault(keys.vault_key), {v.venue_id for v in self.venues})
        size, events, offsets, now = Settings().batch_size, [], [0] * PARTITIONS, time.time()
        for i in range(0, n, size):  # the producer's work, not timed
            batch = edge.admit(lines[i : min(i + size, n)]).checkins
            targets, values = checkin_messages(batch, (schema_id, schema), PARTITIONS)
            for p, value in zip(targets, values, strict=True):
                msg = SimpleNamespace(partition=p, offset=offsets[p], value=value, timestamp=now, topic="checkins")
                events.append(SimpleNamespace(message=msg))
                offsets[p] += 1

        class Discard:
            def insert(self, table: str, columns: object) -> None:
                return None

            def query(self, sql: str, params: object = None) -> dict:
                with ClickHouseStore(url) as store:
                    return store.query(sql)

            def close(self) -> None:
                return None

        class DictTable(dict):  # the venue-state table without a changelog: delivery is immediate
            @property
            def data(self) -> dict:
                return self

            def send_changelog(self, partition: object, key: bytes, value: bytes) -> asyncio.Future:
                done = asyncio.get_running_loop().create_future()
                done.set_result(None)
                return done

        async def _discard_letters(letters: list) -> None:  # dead letters are not part of this measurement
            return None

        def run(store_factory: Callable[[], Any]) -> dict[str, Any]:
            # Callbacks into Faust's consumer, stubbed: every partition is ours, nothing known about offsets.
            stubs = {
                "highwater": lambda p: None,
                "assigned": lambda: set(range(PARTITIONS)),
                "committed": lambda p: None,
                "settled": lambda: True,
                "publish": _discard_letters,
            }
            extra = {k: v for k, v in stubs.items() if k in inspect.signature(CheckinWorker).parameters}
            worker = CheckinWorker(
                settings=settings,
                table=DictTable(),
                registry=registry,
                store=RetryingStore(store_factory),
                **extra,
            )

            async def all_batches() -> None:
                for i in range(0, len(events), batch_events):
                    await worker.handle(events[i : i + batch_events])

            cpu0, t0 = time.process_time(), time.perf_counter()
            asyncio.run(all_batches())
            seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            return {
                "seconds": round(seconds, 2),
                "cpu_seconds": round(cpu, 2),
                "events_per_s": rate(len(events), seconds),
            }

        with_inserts = run(lambda: open_store(settings))
        discarded = run(Discard)
        return {
            "events": len(events),
            "batch_events": batch_events,
            "with_clickhouse_inserts": with_inserts,
            "inserts_discarded": discarded,
            "note": "CheckinWorker.handle (decode Avro, build the batch, dedupe/reorder/pair/occupancy, pickle the "
            "changed venue states into a dict, insert) in one process, no Faust, no Kafka; events from all "
            f"{PARTITIONS} partitions in arrival order, {batch_events:,} per call (about what take() gave the "
            "workers in the concurrent run)",
        }

    def profile(self, lines: list[bytes]) -> dict[str, Any]:
        """pyinstrument over the producer (in process) and over one worker draining that backlog."""
        from pyinstrument import Profiler
        from pyinstrument.session import Session

        a = self.args
        n = min(len(lines), a.profile_events)
        size = Settings().batch_size
        batches = [lines[i : min(i + size, n)] for i in range(0, n, size)]
        _url, settings, logs = self.pipeline("profile")
        prof = Profiler(interval=0.001, async_mode="disabled")
        prof.start()
        started = time.perf_counter()
        counts = produce_lines(settings, batches)
        producer_s = time.perf_counter() - started
        producer_profile = summarise(prof.stop().root_frame(), "produce_lines")
        session_file = logs / "worker.pyisession"
        qrtrace_bin = str(Path(sys.executable).parent / "qrtrace")
        workers = self.workers(
            settings,
            logs,
            1,
            lambda port: [
                sys.executable,
                "-m",
                "pyinstrument",
                "-i",
                "0.001",
                "-r",
                "pyisession",
                "-o",
                str(session_file),
                qrtrace_bin,
                "worker",
            ],
        )
        try:
            workers.start()
            wait_assigned(settings.broker, settings.worker_group, settings.topic_prefix + "checkins", 1, workers, 180)
            t0 = time.monotonic()
            _, t_done = poll_until(
                lambda: received(workers.scrape()), counts["sent"], max(300.0, n / 1000), 0.5, workers.check_alive
            )
            samples = workers.scrape()
        finally:
            workers.stop(signal.SIGINT, timeout=120)
        worker_profile: dict[str, Any] = {"error": "no profile written"}
        if session_file.exists():
            worker_profile = summarise(Session.load(str(session_file)).root_frame(), "_handle_partition")
        return {
            "events": n,
            "producer": {"seconds_under_profiler": round(producer_s, 2), **producer_profile},
            "worker": {
                "drain_seconds_under_profiler": round(t_done - t0, 2),
                "received": counts["sent"],
                **worker_profile,
                "metrics": worker_breakdown(samples),
            },
            "note": "pyinstrument samples the main thread only (1 ms): the worker's ClickHouse inserts run in an "
            "executor thread and show as time awaiting it; profiler overhead slows both sides",
        }


def per_worker_metrics(variants: dict[str, Any]) -> list[dict[str, Any]]:
    return variants["concurrent"]["worker_metrics"]["per_worker"]


def latency_summary(hist: dict[str, Any]) -> dict[str, Any]:
    p50, p99 = quantile(hist, 0.5), quantile(hist, 0.99)
    return {
        "p50_ms": round(p50 * 1000) if p50 is not None else None,
        "p99_ms": round(p99 * 1000) if p99 is not None else None,
        "mean_ms": round(hist["sum"] / hist["count"] * 1000) if hist["count"] else None,
        "samples": int(hist["count"]),
        "buckets_s": [[("+Inf" if math.isinf(le) else le), int(n)] for le, n in hist["buckets"]],
    }


def worker_breakdown(samples: list[dict]) -> dict[str, Any]:
    """Sink seconds per table, batch sizes, received events: per worker and summed."""
    per = []
    for s in samples:
        tables = sorted({dict(lab)["table"] for (n, lab) in s if n == "qrtrace_sink_insert_seconds_sum"})
        per.append(
            {
                "received": int(metric(s, "qrtrace_events_total", stage="worker", outcome="received")),
                "batches": int(metric(s, "qrtrace_batch_size_count", stage="worker")),
                "mean_batch_size": round(
                    metric(s, "qrtrace_batch_size_sum", stage="worker")
                    / max(1, metric(s, "qrtrace_batch_size_count", stage="worker"))
                ),
                "sink_seconds": {t: round(metric(s, "qrtrace_sink_insert_seconds_sum", table=t), 2) for t in tables},
                "sink_inserts": {t: int(metric(s, "qrtrace_sink_insert_seconds_count", table=t)) for t in tables},
                "sink_retries": int(metric(s, "qrtrace_sink_retries_total")),
                "process_cpu_seconds": round(metric(s, "process_cpu_seconds_total"), 2),
            }
        )
    return {"per_worker": per}


def summarise(root: Any, focus: str) -> dict[str, Any]:
    """Where a pyinstrument profile spends its time: the calls under `focus` (all its occurrences merged by
    function, 3 levels), application functions by inclusive time, and the top self time overall."""
    total = root.time

    def outermost(frame: Any, name: str) -> list[Any]:
        if frame.function == name:
            return [frame]
        return [f for c in frame.children for f in outermost(c, name)]

    def merged(frames: list[Any], depth: int, whole: float) -> list[dict[str, Any]]:
        groups: dict[tuple[str, str], list[Any]] = {}
        for f in frames:
            for c in f.children:
                groups.setdefault((c.function, c.file_path_short), []).append(c)
        out = []
        for (name, path), members in sorted(groups.items(), key=lambda kv: -sum(c.time for c in kv[1])):
            seconds = sum(c.time for c in members)
            if seconds < 0.01 * whole:
                break
            node: dict[str, Any] = {"function": name, "file": path, "seconds": round(seconds, 3)}
            if depth > 1 and (kids := merged(members, depth - 1, whole)):
                node["children"] = kids
            out.append(node)
        return out

    selves: dict[tuple[str, str], float] = {}
    inclusive: dict[tuple[str, str], float] = {}

    def walk(frame: Any, open_keys: frozenset) -> None:
        key = (frame.function, frame.file_path_short)
        if frame.is_application_code and key not in open_keys:  # outermost occurrence only: no double count
            inclusive[key] = inclusive.get(key, 0.0) + frame.time
        inner = open_keys | {key}
        for c in frame.children:
            if c.function == "[self]" or not c.children:
                self_key = key if c.function == "[self]" else (c.function, c.file_path_short)
                selves[self_key] = selves.get(self_key, 0.0) + c.time
                if c.function != "[self]" and c.is_application_code and self_key not in inner:
                    inclusive[self_key] = inclusive.get(self_key, 0.0) + c.time
            else:
                walk(c, inner)

    walk(root, frozenset())
    by_package: dict[str, float] = {}

    def package(frame: Any) -> str:
        path = frame.file_path or ""
        if "site-packages/" in path:
            return path.split("site-packages/", 1)[1].split("/", 1)[0]
        if "/lib/python3" in path:
            return "stdlib " + path.split("/lib/python3", 1)[1].split("/", 2)[1].removesuffix(".py")
        return "qrtrace" if str(REPO) in path else path

    def attribute(frame: Any, owner: str) -> None:
        for c in frame.children:
            if c.function == "epoll.poll":
                name = "idle (epoll.poll)"
            elif c.function == "[self]" or c.file_path_short == "<built-in>":
                name = owner  # built-ins are charged to their caller's package
            else:
                name = package(c)
            if c.function == "[self]" or not c.children:
                by_package[name] = by_package.get(name, 0.0) + c.time
            else:
                attribute(c, name)

    attribute(root, package(root))
    focused = outermost(root, focus)
    focus_s = sum(f.time for f in focused)

    def listing(d: dict[tuple[str, str], float], n: int) -> list[dict[str, Any]]:
        top = sorted(d.items(), key=lambda kv: -kv[1])[:n]
        return [{"function": f, "file": p, "seconds": round(t, 3), "share": round(t / total, 3)} for (f, p), t in top]

    return {
        "profiled_seconds": round(total, 2),
        f"{focus}_seconds": round(focus_s, 2),
        f"{focus}_calls": merged(focused, 3, focus_s or total),
        "application_functions_inclusive": listing(inclusive, 20),
        "top_self_time": listing(selves, 20),
        "self_time_by_package": {
            k: round(v, 2) for k, v in sorted(by_package.items(), key=lambda kv: -kv[1]) if v >= 0.005 * total
        },
    }


# -- chart (Pillow: matplotlib is not in the venv) --------------------------------------------
def draw_chart(path: Path, bars: list[tuple[str, float, str]], title: str, subtitle: str) -> None:
    """Horizontal bars on a log scale: (label, events/s, kind); dashed line at the target."""
    colours = {
        "e2e": (31, 119, 180),
        "naive": (214, 39, 40),
        "producer": (255, 127, 14),
        "worker": (150, 150, 150),
        "sink": (140, 86, 75),
        "other": (100, 100, 100),
    }
    log_bar_chart(path, bars, title, subtitle, colours, TARGET_EVENTS_PER_S,
                  f"target {TARGET_EVENTS_PER_S:,}/s end to end", left=360, plot_w=600)  # fmt: skip


# -- main -------------------------------------------------------------------------------------
def calibrated_days(args: argparse.Namespace) -> int:
    """Days of simulated traffic for about --events check-ins from --population residents."""
    if args.days:
        return args.days
    probe = build_district(SimulationConfig(seed=args.seed, start=SIM_START, days=3, population=20_000))
    per_person_day = expected_event_count(probe) / (20_000 * 3)
    return max(1, round(args.events / (per_person_day * args.population)))


def git_state() -> dict[str, Any]:
    """The commit measured, and which files differed from it (others may be editing the worker)."""

    def git(*args: str) -> str:
        proc = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=30)
        return proc.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "modified": git("status", "--short", "--untracked-files=no").splitlines(),
    }


def _terminate(signum: int, frame: object) -> None:
    log(f"received signal {signum}: stopping workers and servers")
    raise SystemExit(128 + signum)  # run the finally blocks: servers and workers are stopped


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.chart_from:
        chart_from_result(json.loads(args.chart_from.read_text()), args.chart or args.chart_from.with_suffix(".png"))
        return 0
    signal.signal(signal.SIGTERM, _terminate)
    load_at_start = os.getloadavg()
    if args.tmp_dir:
        args.tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="qrtrace-pipeline-bench-", dir=args.tmp_dir) as tmp_name:
        tmp = Path(tmp_name)
        key_file = tmp / "keys.json"
        load_or_create_keyring(key_file)

        # 1. data, in memory (not timed)
        t = time.perf_counter()
        population, days = args.population, calibrated_days(args)
        config = SimulationConfig(seed=args.seed, start=SIM_START, days=days, population=population)
        district = build_district(config)
        batches = [list(b) for b in checkin_batches(district, Settings().batch_size)]
        lines = [line for b in batches for line in b]
        events = len(lines)
        log(
            f"simulated {events:,} events ({population:,} people x {days} days, {len(district.venues)} venues) "
            f"in {time.perf_counter() - t:.0f} s [not timed]"
        )

        # 2. expected result: the embedded pipeline on the same input, same keys (not timed)
        expected = embedded_expected(
            Settings(store=str(tmp / "embedded"), key_file=key_file, actor="bench", now=REPLAY_CLOCK), district.venues,
            batches
        )
        log(
            f"embedded reference: {len(expected['checkins']):,} check-ins, {len(expected['visits']):,} visits, "
            f"{sum(expected['dead_letters'].values()):,} dead letters in {expected['report']['seconds']} s [not timed]"
        )

        infra = Infra(tmp / "servers")
        try:
            infra.start_kafka()
            log(f"kafka at {infra.broker}")
            bench = Bench(args, tmp, infra, key_file, district.venues)
            variants: dict[str, Any] = {}
            if not args.no_backlog:
                variants["backlog"] = bench.measured("backlog", batches, expected, concurrent=False)
                report_variant(variants["backlog"])
            variants["concurrent"] = bench.measured("concurrent", batches, expected, concurrent=True)
            report_variant(variants["concurrent"])
            paced = None
            if args.latency_seconds > 0:
                offered = args.latency_rate or max(1000, int(variants["concurrent"]["e2e_events_per_s"] / 2000) * 1000)
                paced = bench.paced(lines, offered, args.latency_seconds)
                log(f"paced at {offered:,}/s: p50 {paced['latency']['p50_ms']} ms, p99 {paced['latency']['p99_ms']} ms")
            naive = bench.naive(lines)
            log(
                f"naive: {naive['events']:,} events in {naive['seconds']} s = {naive['events_per_s']:,}/s "
                f"({naive['inserts']:,} single-row INSERTs)"
            )
            profile = bench.profile(lines) if args.profile_events > 0 else None
            core = None
            if args.profile_events > 0:
                take = max(1, round(sum(w["mean_batch_size"] for w in per_worker_metrics(variants)) / args.workers))
                try:
                    core = bench.core_alone(lines, take)
                    log(
                        f"worker code without Faust: {core['with_clickhouse_inserts']['events_per_s']:,}/s with "
                        f"inserts, {core['inserts_discarded']['events_per_s']:,}/s without"
                    )
                except Exception as exc:  # the worker is being edited: report the breakage, keep the rest
                    core = {"error": f"{type(exc).__name__}: {exc}"}
                    log(f"core-alone measurement failed: {core['error']}")
        finally:
            infra.stop_all()
            log("servers stopped")
        del expected["checkins"], expected["visits"]

    conc = variants["concurrent"]
    lat = (paced or conc)["latency"]
    cmp_ = conc["comparison"]
    result = {
        "events": events,
        "e2e_events_per_s": conc["e2e_events_per_s"],
        "e2e_note": "concurrent run: workers running and assigned, then first produce -> last check-in row stored",
        "baseline_events_per_s": naive["events_per_s"],
        "ratio": round(conc["e2e_events_per_s"] / naive["events_per_s"], 1) if naive["events_per_s"] else None,
        "lost": cmp_["lost"] + sum(v["comparison"]["lost"] for k, v in variants.items() if k != "concurrent"),
        "duplicated": cmp_["duplicated"]
        + sum(v["comparison"]["duplicated"] for k, v in variants.items() if k != "concurrent"),
        "replaced_rows": cmp_["replaced_rows"],
        "worker_restarts": {k: len(v["worker_restarts"]) for k, v in variants.items()},
        "p50_latency_ms": lat["p50_ms"],
        "p99_latency_ms": lat["p99_ms"],
        "latency_note": (
            f"paced run at {paced['offered_events_per_s']:,} events/s offered"
            if paced
            else "concurrent run at full speed (a backlog builds up)"
        )
        + "; qrtrace_end_to_end_seconds: produce timestamp -> the worker stored the batch that held the event",
        "p50_latency_ms_at_full_speed": conc["latency"]["p50_ms"],
        "p99_latency_ms_at_full_speed": conc["latency"]["p99_ms"],
        "producer_events_per_s": (variants.get("backlog") or conc)["producer"]["events_per_s"],
        "producer_note": "backlog run: edge + Avro + Kafka produce incl. flush, workers not running"
        if "backlog" in variants
        else "concurrent run (workers running)",
        "per_worker_events_per_s": conc["per_worker_events_per_s"],
        "sink_rows_per_s": conc["sink_rows_per_s"],
        "drain_events_per_s": variants["backlog"]["window_events_per_s"] if "backlog" in variants else None,
        "target_events_per_s": TARGET_EVENTS_PER_S,
        "meets_target": conc["e2e_events_per_s"] >= TARGET_EVENTS_PER_S,
        "target_ratio": TARGET_RATIO,
        "meets_ratio": bool(naive["events_per_s"]) and conc["e2e_events_per_s"] / naive["events_per_s"] >= TARGET_RATIO,
        "variants": variants,
        "paced": paced,
        "baseline": naive,
        "profile": profile,
        "worker_core_without_faust": core,
        "expected": expected,
        "config": {
            "population": population,
            "days": days,
            "seed": args.seed,
            "start": SIM_START.isoformat(),
            "venues": len(district.venues),
            "workers": args.workers,
            "partitions": PARTITIONS,
            "batch_size": Settings().batch_size,
            "naive_events_offered": args.naive_events,
            "naive_seconds_budget": args.naive_seconds,
        },
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_at_start": [round(v, 2) for v in load_at_start],
            "note": MACHINE_NOTE,
        },
        "code": git_state(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n")
    chart = args.chart or args.out.with_suffix(".png")
    chart_from_result(result, chart)
    print_summary(result, args.out, chart)
    return 0 if result["lost"] == 0 and result["duplicated"] == 0 else 1


def chart_from_result(result: dict[str, Any], chart: Path) -> None:
    variants, conc, naive = result["variants"], result["variants"]["concurrent"], result["baseline"]
    workers = result["config"]["workers"]
    bars = [(f"end to end, concurrent ({workers} workers)", conc["e2e_events_per_s"], "e2e")]
    if "backlog" in variants:
        b = variants["backlog"]
        bars += [
            ("end to end, produce then consume", b["e2e_events_per_s"], "e2e"),
            (f"{workers} workers draining a backlog", b["window_events_per_s"], "worker"),
            ("producer alone (edge+Avro+Kafka)", b["producer"]["events_per_s"], "producer"),
        ]
    bars.append(("producer during concurrent run", conc["producer"]["events_per_s"], "producer"))
    bars += [(f"worker {i} (concurrent run)", v, "worker") for i, v in enumerate(conc["per_worker_events_per_s"], 1)]
    core = result.get("worker_core_without_faust") or {}
    if "error" not in core and core:
        bars.append(("worker code alone, no Faust", core["with_clickhouse_inserts"]["events_per_s"], "other"))
        bars.append(("worker code alone, inserts discarded", core["inserts_discarded"]["events_per_s"], "other"))
    bars.append(("sink rows/s (concurrent run)", conc["sink_rows_per_s"], "sink"))
    bars.append((f"naive baseline ({workers} workers)", naive["events_per_s"], "naive"))
    m = result["machine"]
    draw_chart(
        chart,
        bars,
        f"qrtrace distributed pipeline: {result['events']:,} simulated check-ins",
        f"{result['date'][:10]}, Kafka + {workers} Faust workers + ClickHouse 18.16 on "
        f"{m['cpu_count']} shared CPUs, Python {m['python']}; bars: events/s (sink: rows/s)",
    )


def report_variant(v: dict[str, Any]) -> None:
    c = v["comparison"]
    log(
        f"{v['variant']}: e2e {v['e2e_seconds']} s = {v['e2e_events_per_s']:,}/s; window {v['window_seconds']} s = "
        f"{v['window_events_per_s']:,}/s; per worker {v['per_worker_events_per_s']}; lost {c['lost']}, "
        f"duplicated {c['duplicated']}, replaced {c['replaced_rows']}; p50/p99 {v['latency']['p50_ms']}/"
        f"{v['latency']['p99_ms']} ms; worker restarts {len(v['worker_restarts'])}"
    )


def print_summary(r: dict[str, Any], out: Path, chart: Path) -> None:
    print()
    print(f"events                     {r['events']:>12,}")
    print(
        f"end to end (concurrent)    {r['e2e_events_per_s']:>12,.0f} events/s   target {TARGET_EVENTS_PER_S:,}: "
        f"{'met' if r['meets_target'] else 'NOT met'}"
    )
    if r["drain_events_per_s"]:
        print(f"workers draining backlog   {r['drain_events_per_s']:>12,.0f} events/s")
    print(f"producer                   {r['producer_events_per_s']:>12,.0f} events/s")
    print(f"per worker                 {r['per_worker_events_per_s']}")
    print(f"sink rows/s                {r['sink_rows_per_s']:>12,.0f}")
    print(
        f"naive baseline             {r['baseline_events_per_s']:>12,.1f} events/s   ratio {r['ratio']}x "
        f"(target {TARGET_RATIO}x: {'met' if r['meets_ratio'] else 'NOT met'})"
    )
    print(f"latency p50 / p99          {r['p50_latency_ms']} / {r['p99_latency_ms']} ms ({r['latency_note']})")
    print(f"lost {r['lost']}, duplicated {r['duplicated']}, replaced (provisional visit rows) {r['replaced_rows']}")
    print(f"\nwrote {out} and {chart}")


if __name__ == "__main__":
    sys.exit(main())
