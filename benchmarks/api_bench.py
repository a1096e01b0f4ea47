"""Scanner batches through the HTTP API, against the same batches handed to the runtime directly.

    .venv/bin/python benchmarks/api_bench.py [--population N] [--max-requests K] [--clients C]
                                             [--out benchmarks/results/api.json]

1. Simulate a district (not timed) and cut its check-ins the way scanners send them: one request per
   venue per delivery slice (each scanner's token is bound to its venue).
2. Baseline, on a fresh store: `EmbeddedRuntime.ingest` called once per request-sized batch (no HTTP,
   no auth, no JSON body), i.e. the floor the API cannot go below.
3. Measured, each on another fresh store: `qrtrace serve`'s application under uvicorn on 127.0.0.1,
   (a) one keep-alive HTTP client posting the same batches in order (the HTTP and auth overhead), then
   (b) C clients at once, each the scanner of its own venues posting them in order (what a district
   looks like; the server's group commit stores concurrent batches in shared passes).
Every store must end with the same check-ins and visits. Reports requests/s, events/s, per-request
latency p50/p95 and the ratios to the direct baseline. Bounded: at most K requests, 10 minutes per run.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import threading
import time
import zlib
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import uvicorn
from charts import log_bar_chart

from qrtrace.access import Principal, Role
from qrtrace.api.app import create_app
from qrtrace.api.server import free_port
from qrtrace.api.service import ApiService
from qrtrace.api.tokens import TokenFile
from qrtrace.embedded import EmbeddedRuntime
from qrtrace.producers.simulator import VN_TZ, SimulationConfig, build_district, checkin_batches
from qrtrace.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results"
SIM_START = datetime(2021, 7, 19, tzinfo=VN_TZ)
# The simulated days are replayed: the receiving clock reads a time just after them (QRTRACE_NOW).
REPLAY_CLOCK = (SIM_START + timedelta(days=10)).isoformat()
BUDGET_S = 600
STORED = ("SELECT count() AS n FROM qrtrace.checkins FINAL", "SELECT count() AS n FROM qrtrace.visits_by_venue FINAL")


Requests = list[tuple[str, list[dict]]]


def scanner_requests(population: int, slice_events: int, max_requests: int) -> tuple[object, Requests]:
    """The district's venues and its check-ins as (venue, records) requests in delivery order."""
    district = build_district(SimulationConfig(seed=2021, start=SIM_START, days=1, population=population))
    requests: Requests = []
    for lines in checkin_batches(district, slice_events):
        by_venue: dict[str, list[dict]] = defaultdict(list)
        for line in lines:
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a broken line cannot travel inside a JSON array body
            contract = {"scan_id", "venue_id", "person_id", "direction", "event_time", "mode", "scanner_id"}
            if (isinstance(record, dict) and set(record) <= contract | {"declaration"}
                    and all(isinstance(record.get(k), str) for k in contract)
                    and isinstance(record.get("declaration", {}), dict | None)):  # fmt: skip
                by_venue[record["venue_id"]].append(record)
        requests.extend(sorted(by_venue.items()))
        if len(requests) >= max_requests:
            break
    return district, requests[:max_requests]


def _prepare(root: Path, district) -> Settings:  # type: ignore[no-untyped-def]
    settings = Settings(now=REPLAY_CLOCK, store=str(root / "store"), key_file=root / "keys.json",
                        token_file=root / "tokens.json")
    with EmbeddedRuntime(settings) as rt:
        rt.register_venues(district.venues)
    return settings


def _stats(latencies: list[float], events: int, seconds: float) -> dict:
    ordered = sorted(latencies)
    return {"requests": len(ordered), "events": events, "seconds": round(seconds, 3),
            "requests_per_s": round(len(ordered) / seconds, 1), "events_per_s": round(events / seconds, 1),
            "p50_ms": round(1000 * ordered[len(ordered) // 2], 2),
            "p95_ms": round(1000 * ordered[int(len(ordered) * 0.95)], 2)}  # fmt: skip


def run_direct(settings: Settings, requests: Sequence[tuple[str, list[dict]]]) -> tuple[dict, tuple[int, int]]:
    latencies, events = [], 0
    with EmbeddedRuntime(settings) as rt:
        started = time.perf_counter()
        for _, records in requests:
            t = time.perf_counter()
            rt.ingest([[orjson.dumps(r) for r in records]], source="bench")
            latencies.append(time.perf_counter() - t)
            events += len(records)
            if time.perf_counter() - started > BUDGET_S:
                break
        seconds = time.perf_counter() - started
        stored = tuple(rt.store.query(sql)["n"][0] for sql in STORED)
    return _stats(latencies, events, seconds), stored  # type: ignore[return-value]


def run_api(settings: Settings, requests: Requests, clients: int = 1) -> tuple[dict, tuple[int, int]]:
    book = TokenFile(settings.tokens_path)
    venues = sorted({v for v, _ in requests})
    tokens = {v: book.issue(Principal(f"scanner-{v}", Role.SCANNER, venues=frozenset({v})), 2**62).token
              for v in venues}  # fmt: skip
    svc = ApiService(settings)
    port = free_port("127.0.0.1")
    server = uvicorn.Server(uvicorn.Config(create_app(svc), host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    latencies: list[float] = []
    failures: list[str] = []
    # Each client is the scanner of its venues and posts their batches in order, as one device would.
    shares = [[r for r in requests if zlib.crc32(r[0].encode()) % clients == i] for i in range(clients)]

    def scanner(share: Sequence[tuple[str, list[dict]]], started: float) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            for venue, records in share:
                t = time.perf_counter()
                resp = client.post("/api/checkins", json=records, headers={"Authorization": f"Bearer {tokens[venue]}"})
                latencies.append(time.perf_counter() - t)
                if resp.status_code != 202:
                    failures.append(f"{resp.status_code} {resp.text[:200]}")
                    return
                if time.perf_counter() - started > BUDGET_S:
                    return

    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for v in venues:  # each scanner signs in once (scrypt); the server remembers a verified token
                client.get("/api/me", headers={"Authorization": f"Bearer {tokens[v]}"}).raise_for_status()
        started = time.perf_counter()
        threads = [threading.Thread(target=scanner, args=(share, started)) for share in shares]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        seconds = time.perf_counter() - started
        if failures:
            raise SystemExit(f"the API refused a batch: {failures[0]}")
        events = sum(len(records) for _, records in requests)
        with svc._lock:
            stored = tuple(svc.rt.store.query(sql)["n"][0] for sql in STORED)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        svc.close()
    return _stats(latencies, events, seconds), stored  # type: ignore[return-value]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--population", type=int, default=5_000)
    p.add_argument("--slice-events", type=int, default=10_000, help="events delivered per slice of time")
    p.add_argument("--max-requests", type=int, default=800)
    p.add_argument("--clients", type=int, default=8, help="concurrent scanners in the last run (default 8)")
    p.add_argument("--out", type=Path, default=RESULTS / "api.json")
    args = p.parse_args(argv)
    district, requests = scanner_requests(args.population, args.slice_events, args.max_requests)
    sizes = sorted(len(r) for _, r in requests)
    print(f"{len(requests)} requests, {sum(sizes):,} check-ins, median {sizes[len(sizes) // 2]} per request")
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b, tempfile.TemporaryDirectory() as c:
        direct, direct_stored = run_direct(_prepare(Path(a), district), requests)
        print("direct runtime, one request at a time:", direct)
        api, api_stored = run_api(_prepare(Path(b), district), requests, clients=1)
        print("HTTP API, one client:                 ", api)
        many, many_stored = run_api(_prepare(Path(c), district), requests, clients=args.clients)
        print(f"HTTP API, {args.clients} concurrent scanners:       ", many)
    if not direct_stored == api_stored == many_stored:
        print(f"MISMATCH (check-ins, visits): direct {direct_stored}, API {api_stored}, concurrent {many_stored}")
        return 1
    result = {
        "benchmark": "api_ingest", "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "population": args.population, "requests": len(requests), "median_events_per_request": sizes[len(sizes) // 2],
        "clients": args.clients, "direct_runtime": direct, "http_api_one_client": api, "http_api_concurrent": many,
        "api_over_direct_p50": round(api["p50_ms"] / direct["p50_ms"], 2),
        "api_share_of_direct_throughput": round(api["events_per_s"] / direct["events_per_s"], 3),
        "concurrent_over_direct_throughput": round(many["events_per_s"] / direct["events_per_s"], 2),
        "stored_checkins_visits": list(api_stored),
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    bars = [("direct runtime, per request", direct["events_per_s"], "baseline"),
            ("HTTP API, one client", api["events_per_s"], "api"),
            (f"HTTP API, {args.clients} scanners at once", many["events_per_s"], "api")]  # fmt: skip
    log_bar_chart(args.out.with_suffix(".png"), bars, "Scanner batches through the HTTP API (embedded store)",
                  f"{len(requests)} requests, median {result['median_events_per_request']} check-ins each; "
                  f"{result['measured_at']}", {"baseline": (150, 150, 150), "api": (183, 28, 28)},
                  direct["events_per_s"], "direct baseline", left=330, plot_w=560)  # fmt: skip
    print(json.dumps({k: result[k] for k in ("api_over_direct_p50", "api_share_of_direct_throughput",
                                             "concurrent_over_direct_throughput")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
