"""Trace benchmark: F1 and F1+F2 latency and batch throughput on a national-size embedded store.

Readers measured in the same run: the trace index (the default: memory-mapped integer-coded segments,
queries/trace_index.py), the chDB store reader (`StoreHopReader`, the reference) and DuckDB.

    .venv/bin/python benchmarks/trace_bench.py --rows 10000000        # synthetic visits (national_data.py)
    .venv/bin/python benchmarks/trace_bench.py --visits FILE.parquet  # person, venue, start, end (Unix s)

1. Load the visits into a fresh embedded store (chDB) in bulk; export them to Parquet for DuckDB.
2. Build the trace index from the store (as `qrtrace trace` does when it is missing), save it, and map it
   back from its files (as a new CLI process would); its build time, bytes per visit resident and on disk.
3. qrtrace, index reader: F1 (depth 1) and F1+F2 (depth 2) of 100 random cases (people with visits, a
   7-day infectious window between days 2 and 21), p50/p95; a batch of 1,000 and one of 15,000 cases
   (F1+F2) through one `trace_batch` call each (and naming the batch: pseudonyms back from codes).
   The same for the chDB reader (batches: --store-batches), and its rows read per query.
4. Baselines in the same run, on the same data and cases: the straightforward ClickHouse query (one
   self-join of the visits filtered only by the case, F1) on a few cases within a time budget, and
   DuckDB (benchmarks/duckdb_baseline.py: sorted copies, one set-based join per hop) on all 100.
5. Correctness: the index reader's, the chDB reader's and DuckDB's F1/F2 cohorts must be identical for every
   measured case.
Writes benchmarks/results/trace-<rows>.json and redraws benchmarks/results/trace.png from every
trace-*.json present (latency against table size). Exits 1 if the cohorts differ.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from charts import line_chart
from national_data import DAY_US, VN_OFFSET_US, NationalShape, load_synthetic
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from qrtrace.queries.trace import CaseQuery, TraceRules, trace_batch
from qrtrace.queries.trace_index import IndexHopReader
from qrtrace.queries.visit_reader import DEFAULT_MAX_VISIT_US, StoreHopReader
from qrtrace.sinks.chdb_store import ChdbStore
from qrtrace.sinks.trace_index_files import IndexFiles, build

RESULTS = Path(__file__).resolve().parent / "results"
US = 1_000_000
GRACE_US = 30 * 60 * US
WINDOW_DAYS = 7
TARGETS = {
    "f1_p95_ms": 2,
    "f12_p95_ms": 15,
    "batch_1000_s": 2,
    "batch_15000_s": 20,
    "duckdb_f1_ratio": 5,
    "duckdb_f12_ratio": 5,
    "naive_ratio": 100,
    "index_build_s": 120,
    "index_bytes_per_visit": 40,
}
NAIVE_SQL = """
SELECT t.person AS person, count() AS exposures
FROM qrtrace.visits_by_venue AS s
INNER JOIN qrtrace.visits_by_venue AS t ON s.venue_id = t.venue_id
WHERE s.person = {person:String} AND s.start_us <= {to_us:Int64} AND s.end_us >= {from_us:Int64}
  AND t.person != s.person AND t.start_us < s.end_us + {grace_us:Int64} AND s.start_us < t.end_us
GROUP BY t.person
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = p.add_mutually_exclusive_group()
    source.add_argument("--rows", type=int, default=10_000_000, help="synthetic visits to generate")
    source.add_argument("--visits", type=Path, help="Parquet of visits: person, venue, start, end (Unix s)")
    p.add_argument("--cases", type=int, default=100, help="random cases for the latency figures")
    p.add_argument("--batches", default="1000,15000", help="batch sizes (F1+F2), comma-separated")
    p.add_argument("--store-batches", default="1000", help="batch sizes for the chDB reader (it is slow)")
    p.add_argument("--naive-cases", type=int, default=5, help="cases for the self-join baseline (at most)")
    p.add_argument("--naive-budget-s", type=float, default=120.0, help="time budget of the self-join baseline")
    p.add_argument("--no-duckdb", action="store_true", help="skip the DuckDB baseline")
    p.add_argument("--seed", type=int, default=2021)
    p.add_argument("--store-dir", type=Path, help="where to build the store (default: a temp dir, removed)")
    p.add_argument("--reuse-store", action="store_true",
                   help="measure the store (and visits.parquet) already in --store-dir instead of loading")  # fmt: skip
    p.add_argument("--out", type=Path, help="result JSON (default benchmarks/results/trace-<rows>.json)")
    return p.parse_args(argv)


def progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,}"),
                    TimeElapsedColumn())  # fmt: skip


def load_store(store: ChdbStore, args: argparse.Namespace) -> dict:
    """Bulk-load the visits; returns what was loaded and how long it took."""
    t0 = time.perf_counter()
    if args.reuse_store:
        pass  # loaded and merged by an earlier run: only describe it
    elif args.visits:
        store.insert_select(PARQUET_INSERT_SQL, _read_parquet(args.visits))
    else:
        shape = NationalShape(rows=args.rows, seed=args.seed)
        with progress() as bar:
            task = bar.add_task("Nạp lượt ghé tổng hợp / loading synthetic visits", total=shape.rows)
            load_synthetic(store, shape, on_block=lambda n: bar.advance(task, n))
    loaded_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    if not args.reuse_store:
        store.execute("OPTIMIZE TABLE qrtrace.visits_by_venue FINAL")
        store.execute("OPTIMIZE TABLE qrtrace.visits_by_person FINAL")
    merged_s = time.perf_counter() - t1
    stats = store.query(
        "SELECT count() AS n, uniqExact(person) AS people, uniqExact(venue_id) AS venues,"
        " min(start_us) AS first, max(end_us) AS last FROM qrtrace.visits_by_venue"
    )
    parts = store.query(
        "SELECT table, count() AS parts, sum(bytes_on_disk) AS bytes FROM system.parts"
        " WHERE database = 'qrtrace' AND active GROUP BY table"
    )
    return {
        "rows": stats["n"][0],
        "people": stats["people"][0],
        "venues": stats["venues"][0],
        "first_us": stats["first"][0],
        "last_us": stats["last"][0],
        "load_s": None if args.reuse_store else round(loaded_s, 1),
        "merge_s": None if args.reuse_store else round(merged_s, 1),
        "reused_store": bool(args.reuse_store),
        "parts": dict(zip(parts["table"], parts["parts"], strict=True)),
        "bytes_on_disk": dict(zip(parts["table"], parts["bytes"], strict=True)),
    }


PARQUET_INSERT_SQL = """
INSERT INTO qrtrace.visits_by_venue (venue_id, person, start_us, end_us, closed_by, version, opened_by)
SELECT toString(venue), toString(person), toInt64(start) * 1000000, toInt64(`end`) * 1000000,
       toInt8(1), toUInt8(1), concat('pq', toString(rowNumberInAllBlocks()))
FROM Python(qrtrace_batch)
"""


def _read_parquet(path: Path) -> pa.Table:
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=["person", "venue", "start", "end"])


def export_parquet(store: ChdbStore, path: Path) -> None:
    """The stored visits as Parquet (Unix seconds) for the DuckDB baseline."""
    store.execute(
        "SELECT person, venue_id AS venue, intDiv(start_us, 1000000) AS start, intDiv(end_us, 1000000) AS `end`"
        f" FROM qrtrace.visits_by_person INTO OUTFILE '{path}' FORMAT Parquet"  # path: our own temp dir
    )


def draw_cases(store: ChdbStore, n: int, seed: int, first_us: int, last_us: int) -> list[CaseQuery]:
    """n random people with visits, each with a 7-day infectious window inside the data's period."""
    people = store.query(
        "SELECT person FROM qrtrace.visits_by_person GROUP BY person"
        " ORDER BY cityHash64(person, {seed:UInt64}) LIMIT {n:UInt64}",
        {"seed": seed, "n": n},
    )["person"]
    rng = np.random.default_rng(seed)
    day0 = (first_us + VN_OFFSET_US) // DAY_US * DAY_US - VN_OFFSET_US
    days = max(1, (last_us - day0) // DAY_US - WINDOW_DAYS)
    starts = day0 + (2 + rng.integers(0, max(1, days - 2), len(people))) * DAY_US
    return [
        CaseQuery(f"bench-{i:05d}", p, int(s), int(s) + WINDOW_DAYS * DAY_US)
        for i, (p, s) in enumerate(zip(people, starts, strict=True))
    ]


def percentiles(ms: list[float]) -> tuple[float, float]:
    return round(float(np.percentile(ms, 50)), 2), round(float(np.percentile(ms, 95)), 2)


def cohort(batch, i: int) -> dict[str, tuple[int, int]]:  # type: ignore[no-untyped-def]
    return {c.person: (c.hop, c.first_exposure // US) for c in batch.results()[i].contacts}


def measure_qrtrace(reader, cases: list[CaseQuery], rules: TraceRules, name: str) -> dict:  # type: ignore[no-untyped-def]
    """Per-case latency of F1 and of F1+F2, one trace_batch call per case (as a user would)."""
    out: dict = {}
    for depth in (1, 2):
        ms, sizes, queries, cohorts = [], [], [], []
        r = TraceRules(depth, rules.grace_us, rules.min_overlap_us, rules.until_us)
        with progress() as bar:
            task = bar.add_task(f"qrtrace {name} F1{'+F2' if depth == 2 else ''}", total=len(cases))
            for case in cases:
                before = getattr(reader, "queries", 0)
                t = time.perf_counter()
                batch = trace_batch(reader, [case], r)
                ms.append((time.perf_counter() - t) * 1000)
                queries.append(getattr(reader, "queries", 0) - before)
                hops = np.bincount(batch.contacts["hop"], minlength=3)
                sizes.append((int(hops[1]), int(hops[2])))
                cohorts.append(cohort(batch, 0))
                bar.advance(task)
        out[depth] = {"ms": ms, "sizes": sizes, "queries": queries, "cohorts": cohorts}
    return out


def rows_read_per_query(store: ChdbStore, cases: list[CaseQuery], rules: TraceRules) -> dict:
    """Untimed pass: rows each of qrtrace's queries read from the tables (chDB's SelectedRows counter,
    read before and after each query), F1+F2."""
    counts: list[int] = []
    events = "SELECT value FROM system.events WHERE event = 'SelectedRows'"

    def selected() -> int:
        return int((store.query(events)["value"] or [0])[0])

    class Counting(StoreHopReader):
        def _query(self, sql, params):  # type: ignore[no-untyped-def]
            before = selected()
            rows = super()._query(sql, params)
            counts.append(selected() - before)
            return rows

    reader = Counting(store)
    for case in cases:
        trace_batch(reader, [case], rules)
    return {
        "queries": len(counts),
        "rows_read_p50": float(np.median(counts)),
        "rows_read_p95": float(np.percentile(counts, 95)),
        "rows_read_max": max(counts),
    }


def measure_batches(make_reader, people: list[CaseQuery], sizes: list[int], rules: TraceRules, name: str) -> dict:  # type: ignore[no-untyped-def]
    """One trace_batch call per size; `named_s`: turning the batch's codes back into pseudonyms after."""
    out = {}
    for size in sizes:
        cases = people[:size]
        if len(cases) < size:
            out[size] = None
            continue
        reader = make_reader()
        t = time.perf_counter()
        batch = trace_batch(reader, cases, rules)
        wall = time.perf_counter() - t
        t = time.perf_counter()
        batch.named()
        named = time.perf_counter() - t
        out[size] = {
            "wall_s": round(wall, 2),
            "named_s": round(named, 2),
            "queries": getattr(reader, "queries", 0),
            "contacts": len(batch.contacts["case"]),
            "exposures": len(batch.exposures["case"]),
        }
        print(f"  {name}: batch of {size:,} cases (F1+F2): {wall:.1f} s (+{named:.1f} s naming), "
              f"{out[size]['contacts']:,} contacts")  # fmt: skip
        del batch
    return out


def build_index(store: ChdbStore, work: Path) -> tuple[IndexHopReader, dict]:
    """Build the index from the store, save it, map it back from its files (what a new process sees)."""
    import resource

    from qrtrace.sinks.trace_index_files import store_id_of

    files = IndexFiles(work / "trace-index")
    with progress() as bar:
        task = bar.add_task("Dựng chỉ mục truy vết / building the trace index", total=1)
        followed = build(store, store_id_of(store), lambda done, total: bar.update(task, completed=done, total=total))
    built_s = followed.built_s or 0.0
    t = time.perf_counter()
    files.save(followed)
    saved_s = time.perf_counter() - t
    in_memory = followed.index.nbytes()
    del followed
    t = time.perf_counter()
    mapped = files.load(store_id_of(store))
    open_ms = (time.perf_counter() - t) * 1000
    assert mapped is not None
    index = mapped.index
    t = time.perf_counter()
    index.warm()  # as `qrtrace serve` does at start: every page read once (DuckDB holds its tables in memory)
    warm_s = time.perf_counter() - t
    visits = len(index)
    return IndexHopReader(index, DEFAULT_MAX_VISIT_US), {
        "build_s": round(built_s, 1),
        "save_s": round(saved_s, 1),
        "open_ms": round(open_ms, 1),
        "warm_s": round(warm_s, 2),
        "visits": visits,
        "bytes": in_memory,
        "bytes_per_visit": round(in_memory / max(1, visits), 1),
        "disk_bytes": files.disk_bytes(),
        "disk_bytes_per_visit": round(files.disk_bytes() / max(1, visits), 1),
        "max_rss_bytes_after_build": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def measure_naive(store: ChdbStore, cases: list[CaseQuery], rules: TraceRules, n: int, budget_s: float) -> dict:
    """The straightforward query: one self-join of the visits filtered only by the case (F1)."""
    ms: list[float] = []
    t0 = time.perf_counter()
    for case in cases[:n]:
        params = {"person": case.person, "from_us": case.from_us, "to_us": case.to_us, "grace_us": rules.grace_us}
        t = time.perf_counter()
        store.query(NAIVE_SQL, params)
        ms.append((time.perf_counter() - t) * 1000)
        if time.perf_counter() - t0 > budget_s:
            break
    return {"cases": len(ms), "ms": ms}


def measure_duckdb(parquet: Path, cases: list[CaseQuery], pool: list[CaseQuery], batch: int, rules: TraceRules) -> dict:
    from duckdb_baseline import DuckDBTrace

    t = time.perf_counter()
    db = DuckDBTrace(parquet, threads=2)
    build_s = time.perf_counter() - t
    out: dict = {"build_s": round(build_s, 1)}
    for depth in (1, 2):
        ms, cohorts = [], []
        with progress() as bar:
            task = bar.add_task(f"DuckDB F1{'+F2' if depth == 2 else ''}", total=len(cases))
            for case in cases:
                t = time.perf_counter()
                found = db.trace(case.person, case.from_us // US, case.to_us // US, depth=depth,
                                 grace=rules.grace_us // US, min_overlap=rules.min_overlap_us // US,
                                 until=rules.until_us // US)  # fmt: skip
                ms.append((time.perf_counter() - t) * 1000)
                cohorts.append({p: (hop, first) for p, (hop, first, _) in found.items()})
                bar.advance(task)
        out[depth] = {"ms": ms, "cohorts": cohorts}
    if batch and len(pool) >= batch:
        many = [(c.case_id, c.person, c.from_us // US, c.to_us // US) for c in pool[:batch]]
        t = time.perf_counter()
        db.trace_many(many, depth=2, grace=rules.grace_us // US, min_overlap=rules.min_overlap_us // US,
                      until=rules.until_us // US)  # fmt: skip
        out["batch"] = {"cases": batch, "wall_s": round(time.perf_counter() - t, 2)}
        print(f"  DuckDB batch of {batch:,} cases (F1+F2): {out['batch']['wall_s']} s")
    db.close()
    return out


def main(argv: list[str] | None = None) -> int:
    return in_work_dir(parse_args(argv), run, "qrtrace-trace-bench-")


def in_work_dir(args: argparse.Namespace, run_in, prefix: str) -> int:  # type: ignore[no-untyped-def]
    """`run_in(args, folder)` in --store-dir, or in a temporary folder removed after."""
    if args.reuse_store and args.store_dir is None:
        print("--reuse-store needs --store-dir (the folder of an earlier run).", file=sys.stderr)
        return 2
    own_dir = args.store_dir is None
    work = Path(tempfile.mkdtemp(prefix=prefix)) if own_dir else args.store_dir
    try:
        return run_in(args, work)
    finally:
        if own_dir:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> int:
    store = ChdbStore(work / "store")
    loaded = load_store(store, args)
    verb = "Reused" if args.reuse_store else "Loaded"
    print(f"{verb} {loaded['rows']:,} visits of {loaded['people']:,} people at {loaded['venues']:,} venues "
          f"in {loaded['load_s']} s (+{loaded['merge_s']} s merge)")  # fmt: skip
    sizes = [int(x) for x in args.batches.split(",") if x]
    pool = draw_cases(store, max([args.cases, *sizes]), args.seed, loaded["first_us"], loaded["last_us"])
    cases = pool[: args.cases]
    rules = TraceRules(depth=2, grace_us=GRACE_US, min_overlap_us=0, until_us=int(loaded["last_us"]))

    reader, index_stats = build_index(store, work)
    print(f"Trace index: {index_stats['visits']:,} visits built in {index_stats['build_s']} s, "
          f"{index_stats['bytes_per_visit']} B/visit in memory, {index_stats['disk_bytes_per_visit']} on disk, "
          f"opened in {index_stats['open_ms']} ms")  # fmt: skip
    ours = measure_qrtrace(reader, cases, rules, "index")
    batches = measure_batches(lambda: reader, pool, sizes, rules, "index")
    index_stats["rss_bytes_after_traces"] = _rss_bytes()
    chdb = measure_qrtrace(StoreHopReader(store), cases, rules, "chDB")
    rows_read = rows_read_per_query(store, cases[:20], rules)
    store_sizes = [int(x) for x in args.store_batches.split(",") if x]
    chdb_batches = measure_batches(lambda: StoreHopReader(store), pool, store_sizes, rules, "chDB")
    naive = measure_naive(store, cases, rules, args.naive_cases, args.naive_budget_s)
    duck = None
    if not args.no_duckdb:
        parquet = args.visits or work / "visits.parquet"
        if not args.visits and not (args.reuse_store and parquet.exists()):
            export_parquet(store, parquet)
        store.close()  # DuckDB gets the machine's memory and cores to itself
        duck = measure_duckdb(parquet, cases, pool, min(sizes, default=0), rules)
    else:
        store.close()

    mismatches = [(depth, f"{case.case_id} (index vs chDB)") for depth in (1, 2) for i, case in enumerate(cases)
                  if ours[depth]["cohorts"][i] != chdb[depth]["cohorts"][i]]  # fmt: skip
    if duck:
        for depth in (1, 2):
            for i, case in enumerate(cases):
                if ours[depth]["cohorts"][i] != duck[depth]["cohorts"][i]:
                    mismatches.append((depth, case.case_id))
    result = summarise(args, loaded, ours, rows_read, batches, naive, duck, mismatches)
    result.update(store_reader_summary(chdb, chdb_batches, duck))
    result["index"] = index_stats
    result["index_build_s"] = index_stats["build_s"]
    result["index_bytes_per_visit"] = index_stats["bytes_per_visit"]
    result["index_disk_bytes_per_visit"] = index_stats["disk_bytes_per_visit"]
    result["cohorts_match_chdb_reader"] = not any("chDB" in m[1] for m in mismatches)
    out = args.out or RESULTS / f"trace-{result['rows']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    draw_chart(RESULTS)
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict)}, indent=2))
    if mismatches:
        print(f"FAIL: the readers disagree on {len(mismatches)} traces: {mismatches[:5]}", file=sys.stderr)
        return 1
    return 0


def _rss_bytes() -> int:
    """This process's resident memory now (the index's pages that traces touched count here)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def store_reader_summary(chdb: dict, batches: dict, duck: dict | None) -> dict:
    """The chDB store reader's figures under their own keys."""
    f1, f12 = percentiles(chdb[1]["ms"]), percentiles(chdb[2]["ms"])
    out = {"chdb_f1_p50_ms": f1[0], "chdb_f1_p95_ms": f1[1], "chdb_f12_p50_ms": f12[0], "chdb_f12_p95_ms": f12[1],
           "chdb_batches": {str(k): v for k, v in batches.items()}}  # fmt: skip
    for size, v in batches.items():
        out[f"chdb_batch_{size}_s"] = v["wall_s"] if v else None
    if duck:
        out["chdb_duckdb_f1_ratio"] = round(percentiles(duck[1]["ms"])[1] / f1[1], 2)
        out["chdb_duckdb_f12_ratio"] = round(percentiles(duck[2]["ms"])[1] / f12[1], 2)
    return out


def summarise(args, loaded, ours, rows_read, batches, naive, duck, mismatches) -> dict:  # type: ignore[no-untyped-def]
    f1_p50, f1_p95 = percentiles(ours[1]["ms"])
    f12_p50, f12_p95 = percentiles(ours[2]["ms"])
    f1_sizes = [a for a, _ in ours[2]["sizes"] if a]
    f2_sizes = [b for a, b in ours[2]["sizes"] if a]
    naive_p50, naive_p95 = percentiles(naive["ms"]) if naive["ms"] else (None, None)
    duck_f1 = percentiles(duck[1]["ms"]) if duck else (None, None)
    duck_f12 = percentiles(duck[2]["ms"]) if duck else (None, None)
    b = {size: (v["wall_s"] if v else None) for size, v in batches.items()}
    return {
        "rows": loaded["rows"],
        "source": str(args.visits) if args.visits else f"synthetic (benchmarks/national_data.py, seed {args.seed})",
        "f1_p50_ms": f1_p50,
        "f1_p95_ms": f1_p95,
        "f12_p50_ms": f12_p50,
        "f12_p95_ms": f12_p95,
        "batch_1000_s": b.get(1000),
        "batch_15000_s": b.get(15000),
        "naive_f1_p50_ms": naive_p50,
        "naive_f1_p95_ms": naive_p95,
        "naive_ratio": round(naive_p95 / f1_p95, 1) if naive_p95 else None,
        "naive_cases": naive["cases"],
        "duckdb_f1_p50_ms": duck_f1[0],
        "duckdb_f1_p95_ms": duck_f1[1],
        "duckdb_f12_p50_ms": duck_f12[0],
        "duckdb_f12_p95_ms": duck_f12[1],
        "duckdb_f1_ratio": round(duck_f1[1] / f1_p95, 2) if duck else None,
        "duckdb_f12_ratio": round(duck_f12[1] / f12_p95, 2) if duck else None,
        "duckdb_build_s": duck["build_s"] if duck else None,
        "duckdb_batch": duck.get("batch") if duck else None,
        "cohorts_match_duckdb": (not mismatches) if duck else None,
        "f1_size_median": float(np.median(f1_sizes)) if f1_sizes else 0,
        "f1_size_p95": float(np.percentile(f1_sizes, 95)) if f1_sizes else 0,
        "f2_size_median": float(np.median(f2_sizes)) if f2_sizes else 0,
        "f2_size_p95": float(np.percentile(f2_sizes, 95)) if f2_sizes else 0,
        "cases_with_visits_in_window": len(f1_sizes) + sum(1 for a, _ in ours[2]["sizes"] if not a),
        "cases_measured": len(ours[1]["ms"]),
        "queries_per_f1": float(np.median(ours[1]["queries"])),
        "queries_per_f12": float(np.median(ours[2]["queries"])),
        "rows_read_per_query": rows_read,
        "batches": {str(k): v for k, v in batches.items()},
        "targets": TARGETS,
        "load": loaded,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def draw_chart(results: Path) -> None:
    """Latency (p95) against table size for every trace-*.json present: qrtrace and DuckDB."""
    runs = sorted((json.loads(p.read_text()) for p in results.glob("trace-*.json")), key=lambda r: r["rows"])
    if not runs:
        return
    series = {
        "qrtrace index F1 p95": [(r["rows"], r["f1_p95_ms"]) for r in runs if r.get("index")],
        "qrtrace index F1+F2 p95": [(r["rows"], r["f12_p95_ms"]) for r in runs if r.get("index")],
        "chDB reader F1 p95": [(r["rows"], r.get("chdb_f1_p95_ms") or r["f1_p95_ms"]) for r in runs],
        "chDB reader F1+F2 p95": [(r["rows"], r.get("chdb_f12_p95_ms") or r["f12_p95_ms"]) for r in runs],
        "DuckDB F1 p95": [(r["rows"], r["duckdb_f1_p95_ms"]) for r in runs if r.get("duckdb_f1_p95_ms")],
        "DuckDB F1+F2 p95": [(r["rows"], r["duckdb_f12_p95_ms"]) for r in runs if r.get("duckdb_f12_p95_ms")],
        "ClickHouse self-join F1 p95": [(r["rows"], r["naive_f1_p95_ms"]) for r in runs if r.get("naive_f1_p95_ms")],
    }
    line_chart(
        results / "trace.png",
        series,
        title="Truy vết F1/F2: độ trễ theo kích thước bảng / trace latency against table size",
        subtitle="trace index vs chDB reader vs DuckDB, 2 shared cores; p95 of 100 random cases; both axes log",
    )


if __name__ == "__main__":
    raise SystemExit(main())
