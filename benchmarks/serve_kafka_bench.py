"""`qrtrace serve` with a broker: single-scan scanner requests per second, today's path against the baseline.

    .venv/bin/python benchmarks/serve_kafka_bench.py --baseline /path/to/baseline-worktree [--connections 32,128]
                     [--duration 20] [--tokens 64] [--verify-requests 2000] [--out benchmarks/results/serve_kafka.json]

1. Starts Kafka (KRaft) and ClickHouse on 127.0.0.1 with the project's infra scripts, in a temporary state
   directory, and stops them by the pids those scripts recorded.
2. Registers the small-wave venues and issues one scanner token per venue (up to --tokens).
3. For each variant (the baseline checkout given by --baseline, run with its own .venv, and this checkout):
   its own topics, `qrtrace serve` with QRTRACE_BROKER, each token signed in once (scrypt, not timed), then
   `wrk` posting ONE check-in per request (a Lua script: a new scan_id per request, event time = now) at
   each concurrency for --duration seconds. Requests/s, p50/p99 of the answer, wrk's own CPU and the
   server's CPU are recorded.
4. Nothing lost: after each wrk run the variant's checkins topic is read back (confluent-kafka consumer,
   bundles decoded); every run must find at least as many of its scan_ids as it got 202s. Then a Python
   client sends --verify-requests single-scan requests, remembering each scan_id answered 202; every one
   of them must be on the topic (`missing` = 0).
Writes the JSON result; exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
INFRA = REPO / "infra"
VENUES_CSV = REPO / "tests" / "fixtures" / "small-wave" / "venues.csv"
RESULTS = REPO / "benchmarks" / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")

LUA = r"""
-- One check-in per request: a new scan_id each time, the tokens and venues taken in turn.
local scanners = {}
for line in io.lines(os.getenv("BENCH_SCANNERS")) do
  local token, venue = line:match("^(%S+)%s+(%S+)$")
  scanners[#scanners + 1] = {token = token, venue = venue}
end
local prefix = os.getenv("BENCH_PREFIX")
counter = 0
tid = tid or 0  -- set per thread by setup() (a global: a local here would hide it)
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  threads[#threads + 1] = thread
end
function init(args)
  math.randomseed(tid * 7919 + os.time())
end
function request()
  counter = counter + 1
  local s = scanners[(counter + tid * 13) % #scanners + 1]
  local body = string.format(
    '[{"scan_id":"%s-%d-%d","venue_id":"%s","person_id":"09%08d","direction":"in",' ..
    '"event_time":"%s","mode":"personal_qr","scanner_id":"bench-%d"}]',
    prefix, tid, counter, s.venue, math.random(0, 99999999), os.date("!%Y-%m-%dT%H:%M:%S+00:00"), tid)
  return wrk.format("POST", "/api/checkins",
    {["Authorization"] = "Bearer " .. s.token, ["Content-Type"] = "application/json"}, body)
end
function done(summary, latency, requests)
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
"""


def script(*args: object, env: dict[str, str], timeout: float = 600) -> str:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{args[0]} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.stdout.strip()


def cpu_s(pid: int) -> float:
    """utime + stime of a process (and its waited-for children), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / CLK_TCK


def wait_http(port: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"qrtrace serve did not answer on port {port} within {timeout_s:.0f} s")


def checkin(scan_id: str, venue: str, person: int) -> bytes:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    return json.dumps(
        [
            {
                "scan_id": scan_id,
                "venue_id": venue,
                "person_id": f"09{person:08d}",
                "direction": "in",
                "event_time": now,
                "mode": "personal_qr",
                "scanner_id": "bench-verify",
            }
        ]
    ).encode()


def post(conn: http.client.HTTPConnection, token: str, body: bytes) -> int:
    conn.request(
        "POST", "/api/checkins", body, {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    )
    resp = conn.getresponse()
    resp.read()
    return resp.status


def sign_in(port: int, scanners: list[tuple[str, str]], prefix: str) -> int:
    """Each token once (its scrypt verification is cached by the server afterwards); returns the 202s."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    ok = 0
    for i, (token, venue) in enumerate(scanners):
        ok += post(conn, token, checkin(f"{prefix}-signin-{i}", venue, i)) == 202
    return ok


def verify_client(port: int, scanners: list[tuple[str, str]], prefix: str, n: int, threads: int) -> dict:
    """`n` single-scan requests from `threads` keep-alive clients; the scan_ids answered 202."""
    accepted: list[str] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    per = n // threads

    def run(t: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for i in range(per):
            token, venue = scanners[(t * per + i) % len(scanners)]
            scan_id = f"{prefix}-v{t}-{i}"
            try:
                status = post(conn, token, checkin(scan_id, venue, t * per + i))
            except OSError:
                status = 0
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 202:
                    accepted.append(scan_id)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, range(threads)))
    return {"accepted": accepted, "statuses": statuses, "seconds": time.perf_counter() - started}


def topic_scan_ids(broker: str, topic: str, timeout_s: float = 60) -> list[str]:
    """Every scan_id in the topic's check-in bundles, read from the beginning of each partition."""
    from confluent_kafka import Consumer, TopicPartition

    from qrtrace.schemas.registry import default_registry
    from qrtrace.stream_processors.codec import CheckinDecoder

    consumer = Consumer(
        {
            "bootstrap.servers": broker,
            "group.id": f"bench-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        parts = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in parts}
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        decoder = CheckinDecoder(default_registry())
        got: dict[int, int] = dict.fromkeys(parts, 0)
        ids: list[str] = []
        deadline = time.monotonic() + timeout_s
        while any(got[p] < ends[p] for p in parts) and time.monotonic() < deadline:
            for msg in consumer.consume(10_000, timeout=1.0):
                if msg.error() is not None:
                    continue
                got[msg.partition()] = msg.offset() + 1
                decoded = decoder.decode([msg.value()], [msg.offset()])
                ids += [r["scan_id"] for r in decoded.records]
        return ids
    finally:
        consumer.close()


def run_wrk(
    port: int,
    lua: Path,
    scanners_file: Path,
    prefix: str,
    connections: int,
    duration_s: int,
    server_pid: int,
    profile: Path | None = None,
) -> dict:
    env = {**os.environ, "BENCH_SCANNERS": str(scanners_file), "BENCH_PREFIX": prefix}
    cmd = [
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{duration_s}s",
        "--timeout",
        "30s",
        "--latency",
        "-s",
        str(lua),
        f"http://127.0.0.1:{port}/api/checkins",
    ]
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = cpu_s(server_pid)
    spy = None
    if profile is not None:  # py-spy samples the server (collapsed stacks) while wrk runs
        spy = subprocess.Popen(
            [
                "py-spy",
                "record",
                "--pid",
                str(server_pid),
                "--duration",
                str(max(1, duration_s - 2)),
                "--rate",
                "100",
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(profile),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration_s + 120)
    if spy is not None:
        spy.wait(timeout=60)
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_after = cpu_s(server_pid)
    found = re.search(r"BENCH_JSON (\{.*\})", proc.stdout)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"wrk failed ({proc.returncode}): {proc.stdout[-1500:]} {proc.stderr[-1500:]}")
    r = json.loads(found.group(1))
    seconds = r["duration_us"] / 1e6
    errors = r["non2xx"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
    return {
        "connections": connections,
        "seconds": round(seconds, 2),
        "requests": r["requests"],
        "answered_2xx": r["requests"] - r["non2xx"],  # wrk counts complete responses; the route answers 202
        "errors": errors,
        "requests_per_s": round(r["requests"] / seconds, 1),
        "ok_per_s": round((r["requests"] - errors) / seconds, 1),
        "p50_ms": round(r["p50_us"] / 1000, 1),
        "p90_ms": round(r["p90_us"] / 1000, 1),
        "p99_ms": round(r["p99_us"] / 1000, 1),
        "max_ms": round(r["max_us"] / 1000, 1),
        "wrk_cpu_s": round(
            (after_children.ru_utime + after_children.ru_stime) - (before_children.ru_utime + before_children.ru_stime),
            2,
        ),
        "server_cpu_s": round(server_after - server_before, 2),
        "wrk_text": proc.stdout.strip().splitlines()[:12],
    }


def bench_variant(
    name: str,
    checkout: Path,
    base_env: dict[str, str],
    state: Path,
    broker: str,
    scanners: list[tuple[str, str]],
    scanners_file: Path,
    lua: Path,
    args: argparse.Namespace,
) -> dict:
    prefix = f"bench{uuid.uuid4().hex[:6]}-{name}."
    script(
        sys.executable,
        INFRA / "kafka" / "admin.py",
        "topics",
        "--bootstrap",
        broker,
        "--partitions",
        "4",
        "--prefix",
        prefix,
        env=base_env,
    )
    env = {**base_env, "QRTRACE_TOPIC_PREFIX": prefix}
    from qrtrace.api.server import free_port

    port = free_port("127.0.0.1")
    log = (state / f"serve-{name}.log").open("wb")
    qrtrace = checkout / ".venv" / "bin" / "qrtrace"
    server = subprocess.Popen(
        [str(qrtrace), "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_http(port)
        t0 = time.perf_counter()
        signed = sign_in(port, scanners, f"{name}-warm")
        warm_s = time.perf_counter() - t0
        if signed != len(scanners):
            raise SystemExit(
                f"{name}: only {signed} of {len(scanners)} sign-in requests were answered 202; see {log.name}"
            )
        runs = []
        for c in args.connections:
            run_prefix = f"{name}-c{c}"
            profile = args.profile if args.profile and c == args.connections[0] and name == "new" else None
            r = run_wrk(port, lua, scanners_file, run_prefix, c, args.duration, server.pid, profile)
            print(
                f"{name} c={c}: {r['requests_per_s']} req/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
                f"errors {r['errors']}",
                flush=True,
            )
            runs.append(r)
        verify = verify_client(port, scanners, f"{name}-verify", args.verify_requests, args.verify_threads)
    finally:
        server.send_signal(signal.SIGINT)  # by its pid: the service closes (flushes its producer)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
        log.close()
    ids = topic_scan_ids(broker, f"{prefix}checkins")
    on_topic = set(ids)
    for r in runs:
        r["scan_ids_on_topic"] = sum(1 for i in on_topic if i.startswith(f"{name}-c{r['connections']}-"))
        r["lost_bound_ok"] = r["scan_ids_on_topic"] >= r["answered_2xx"]  # extras: sent but unanswered at the end
    missing = [s for s in verify["accepted"] if s not in on_topic]
    return {
        "checkout": str(checkout),
        "commit": subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
        "topic_prefix": prefix,
        "sign_in_s": round(warm_s, 2),
        "runs": runs,
        "verify": {
            "requests": args.verify_requests,
            "threads": args.verify_threads,
            "answered_202": len(verify["accepted"]),
            "statuses": verify["statuses"],
            "seconds": round(verify["seconds"], 2),
            "missing_on_topic": len(missing),
            "duplicated_on_topic": len(ids) - len(on_topic),
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline", type=Path, required=True, help="a checkout of the baseline commit with its own .venv")
    p.add_argument("--connections", type=lambda s: [int(x) for x in s.split(",")], default=[32, 128])
    p.add_argument("--duration", type=int, default=20, help="seconds per wrk run (default 20)")
    p.add_argument("--tokens", type=int, default=64, help="scanner tokens, one venue each (default 64)")
    p.add_argument("--verify-requests", type=int, default=2000)
    p.add_argument("--verify-threads", type=int, default=16)
    p.add_argument("--variants", default="baseline,new")
    p.add_argument("--out", type=Path, default=RESULTS / "serve_kafka.json")
    p.add_argument(
        "--profile", type=Path, help="py-spy collapsed stacks of the new server's first run (py-spy on PATH)"
    )
    args = p.parse_args(argv)
    if not (args.baseline / ".venv" / "bin" / "qrtrace").exists():
        raise SystemExit(f"{args.baseline}/.venv/bin/qrtrace is missing: create the baseline's venv first")

    from qrtrace.access import Principal, Role
    from qrtrace.api.tokens import TokenFile
    from qrtrace.sinks.audit import now_us

    with tempfile.TemporaryDirectory(prefix="qrtrace-serve-kafka-") as tmp:
        state = Path(tmp)
        env0 = {**os.environ, "QRTRACE_PYTHON": sys.executable}
        env0.pop("QRTRACE_NOW", None)  # the receiving clock is the wall clock: event times are now
        script(INFRA / "clickhouse" / "install.sh", env=env0)
        broker = script(INFRA / "kafka" / "start.sh", state / "kafka", env=env0).splitlines()[-1]
        try:
            script(INFRA / "clickhouse" / "start.sh", state / "clickhouse", env=env0)
            ch_port = (state / "clickhouse" / "native_port").read_text().strip()
            env = {
                **env0,
                "QRTRACE_BROKER": broker,
                "QRTRACE_STORE": f"clickhouse://127.0.0.1:{ch_port}/qrtrace",
                "QRTRACE_KEY_FILE": str(state / "keys.json"),
                "QRTRACE_TOKEN_FILE": str(state / "tokens.json"),
                "QRTRACE_PARTITIONS": "4",
            }
            script(REPO / ".venv" / "bin" / "qrtrace", "venues", "import", VENUES_CSV, env=env)
            venues = [line.split(",", 1)[0] for line in VENUES_CSV.read_text().splitlines()[1:] if line.strip()]
            book = TokenFile(state / "tokens.json")
            later = now_us() + 86_400_000_000
            scanners = [
                (book.issue(Principal(f"bench-scanner-{v}", Role.SCANNER, venues=frozenset({v})), later).token, v)
                for v in venues[: args.tokens]
            ]
            scanners_file = state / "scanners.txt"
            scanners_file.write_text("".join(f"{t} {v}\n" for t, v in scanners))
            lua = state / "single_scan.lua"
            lua.write_text(LUA)
            checkouts = {"baseline": args.baseline.resolve(), "new": REPO}
            variants = {}
            for name in args.variants.split(","):
                variants[name] = bench_variant(
                    name, checkouts[name], env, state, broker, scanners, scanners_file, lua, args
                )
        finally:
            subprocess.run([str(INFRA / "kafka" / "stop.sh"), str(state / "kafka")], timeout=120, env=env0)
            subprocess.run([str(INFRA / "clickhouse" / "stop.sh"), str(state / "clickhouse")], timeout=120, env=env0)

    best = {n: max(v["runs"], key=lambda r: r["ok_per_s"]) for n, v in variants.items()}
    result: dict = {
        "what": "qrtrace serve POST /api/checkins with a broker, one check-in per request (wrk, Lua)",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "scanners": len(scanners),
        "duration_s": args.duration,
        "variants": variants,
    }
    if "baseline" in best and "new" in best:
        result.update(
            {
                "requests_per_s": best["new"]["ok_per_s"],
                "baseline_requests_per_s": best["baseline"]["ok_per_s"],
                "ratio": round(best["new"]["ok_per_s"] / max(best["baseline"]["ok_per_s"], 0.1), 1),
                "p50_ms": best["new"]["p50_ms"],
                "p99_ms": best["new"]["p99_ms"],
                "baseline_p50_ms": best["baseline"]["p50_ms"],
                "baseline_p99_ms": best["baseline"]["p99_ms"],
            }
        )
    checks = [
        v["verify"]["missing_on_topic"] == 0 and all(r["lost_bound_ok"] for r in v["runs"]) for v in variants.values()
    ]
    result["lost"] = sum(v["verify"]["missing_on_topic"] for v in variants.values())
    result["ok"] = all(checks)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "variants"}, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
