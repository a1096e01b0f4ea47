"""Risk tiers benchmark: what labelling every exposure close/casual costs a trace, in the same run.

    .venv/bin/python benchmarks/tier_bench.py --rows 1000000
    .venv/bin/python benchmarks/tier_bench.py --rows 10000000 --store-dir /tmp/tb10m --reuse-store

The same store, index and cases as benchmarks/trace_bench.py (synthetic national visits). Each case is
traced, F1+F2 through the trace index, three ways, interleaved case by case so that the machine's noise
falls on all of them alike:
- without tiers (`TraceRules.risk = None`: the trace as it was before tiers, the baseline);
- with the default rule set `qrtrace-2026` (per-category thresholds, zones, over-capacity windows);
- with the preset `pc-covid-2021` (scan times within an hour).
Then one batch of cases (default 1,000) each way. The rule's context (each venue's category, the
over-capacity windows) is built once, as a serving process keeps it: the synthetic store has no venue
registry or occupancy, so every venue gets one of the 21 categories at random and 1 % of the busiest
venues' 15-minute windows are marked over capacity (so that the window look-up does real work).
Also reported: with `--sources close`, the F2 size against all contacts as sources.
Writes benchmarks/results/tiers-<rows>.json. The issue's bar: tiers cost at most 20 % (p50 and p95).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from trace_bench import GRACE_US, RESULTS, build_index, draw_cases, in_work_dir, load_store, percentiles, progress

from qrtrace.domain.categories import load_categories
from qrtrace.queries.risk import RiskContext, load_rule
from qrtrace.queries.trace import TraceRules, trace_batch
from qrtrace.sinks.chdb_store import ChdbStore

WINDOW_US = 15 * 60 * 1_000_000
MAX_OVERHEAD = 0.20


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000, help="synthetic visits to generate")
    p.add_argument("--cases", type=int, default=200, help="random cases for the latency figures")
    p.add_argument("--batch", type=int, default=1000, help="cases in the batch measured each way")
    p.add_argument("--seed", type=int, default=2021)
    p.add_argument("--store-dir", type=Path, help="where to build the store (default: a temp dir, removed)")
    p.add_argument("--reuse-store", action="store_true", help="the store in --store-dir is loaded already")
    p.add_argument("--visits", type=Path, default=None, help=argparse.SUPPRESS)  # load_store's interface
    p.add_argument("--out", type=Path, help="result JSON (default benchmarks/results/tiers-<rows>.json)")
    return p.parse_args(argv)


def synthetic_context(rule, index, seed: int) -> RiskContext:  # type: ignore[no-untyped-def]
    """Every venue code a random category; over capacity: 1 % of the windows of the busiest tenth of venues
    over the data's days (as an occupancy table would flag a crowded market's peak hours)."""
    rng = np.random.default_rng(seed)
    codes = sorted(load_categories())
    n = len(index.venues)
    categories = np.asarray(codes, dtype=object)[rng.integers(0, len(codes), n)]
    busiest = np.argsort(index.venue_longest())[-max(1, n // 10):]
    days = sorted(index.segments)
    windows = (days[-1] - days[0] + 1) * 96 if days else 0
    picks = max(1, len(busiest) * windows // 100)
    over_venues = busiest[rng.integers(0, len(busiest), picks)]
    over_starts = (days[0] * 96 + rng.integers(0, max(1, windows), picks)) * WINDOW_US if days else np.zeros(0)
    return RiskContext.of(rule, np.arange(n), categories, over_venues, np.asarray(over_starts, dtype=np.int64),
                          WINDOW_US, dense=True)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    return in_work_dir(parse_args(argv), run, "qrtrace-tier-bench-")


def run(args: argparse.Namespace, work: Path) -> int:
    store = ChdbStore(work / "store")
    loaded = load_store(store, args)
    pool = draw_cases(store, max(args.cases, args.batch), args.seed, loaded["first_us"], loaded["last_us"])
    reader, index_stats = build_index(store, work)
    store.close()
    until = int(loaded["last_us"])
    plain = TraceRules(depth=2, grace_us=GRACE_US, until_us=until)
    ways = {"none": (plain, None)}
    for name in ("qrtrace-2026", "pc-covid-2021"):
        rule = load_rule(name)
        ways[name] = (TraceRules(2, GRACE_US, 0, until, rule), synthetic_context(rule, reader.index, args.seed))
    default_rule, default_ctx = ways["qrtrace-2026"]
    ways["qrtrace-2026 sources=close"] = (TraceRules(2, GRACE_US, 0, until, default_rule.risk, "close"), default_ctx)

    cases = pool[: args.cases]
    ms: dict[str, list[float]] = {name: [] for name in ways}
    sizes: dict[str, list[tuple[int, int, int]]] = {name: [] for name in ways}
    mismatches = 0
    for case in cases[:5]:  # warm: first calls pay for imports and page faults
        for rules, ctx in ways.values():
            trace_batch(reader, [case], rules, risk=ctx)
    with progress() as bar:
        task = bar.add_task("F1+F2 mỗi ca, có và không phân tầng / per case, with and without tiers", total=len(cases))
        for i, case in enumerate(cases):
            order = list(ways) if i % 2 == 0 else list(reversed(ways))  # alternate who goes first
            cohorts = {}
            for name in order:
                rules, ctx = ways[name]
                t = time.perf_counter()
                batch = trace_batch(reader, [case], rules, risk=ctx)
                ms[name].append((time.perf_counter() - t) * 1000)
                hops = np.bincount(batch.contacts["hop"], minlength=3)
                close = int((batch.contacts["risk"] == 1).sum())
                sizes[name].append((int(hops[1]), int(hops[2]), close))
                cohorts[name] = set(zip(batch.contacts["person"].tolist(), batch.contacts["hop"].tolist(),
                                        batch.contacts["first_exposure"].tolist(), strict=True))  # fmt: skip
            # tiers never move anyone: the same cohort with and without them
            mismatches += sum(cohorts[n] != cohorts["none"] for n in ("qrtrace-2026", "pc-covid-2021"))
            bar.advance(task)

    batches = {}
    for name in ("none", "qrtrace-2026", "none", "qrtrace-2026"):  # twice each, alternating: the noise
        rules, ctx = ways[name]
        t = time.perf_counter()
        batch = trace_batch(reader, pool[: args.batch], rules, risk=ctx)
        batches.setdefault(name, []).append(time.perf_counter() - t)
        del batch

    result = summarise(args, loaded, index_stats, ms, sizes, batches, mismatches)
    out = args.out or RESULTS / f"tiers-{loaded['rows']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if mismatches:
        print(f"FAIL: tiers changed {mismatches} cohorts", file=sys.stderr)
        return 1
    return 0


def summarise(args, loaded, index_stats, ms, sizes, batches, mismatches) -> dict:  # type: ignore[no-untyped-def]
    base = percentiles(ms["none"])
    out: dict = {
        "rows": loaded["rows"],
        "cases": len(ms["none"]),
        "source": f"synthetic (benchmarks/national_data.py, seed {args.seed})",
        "index_visits": index_stats["visits"],
        "f12_ms": {name: dict(zip(("p50", "p95"), percentiles(v), strict=True)) for name, v in ms.items()},
        "cohorts_unchanged_by_tiers": mismatches == 0,
    }
    for name in ("qrtrace-2026", "pc-covid-2021"):
        p50, p95 = percentiles(ms[name])
        out[f"overhead_{name}_p50"] = round(p50 / base[0] - 1, 3)
        out[f"overhead_{name}_p95"] = round(p95 / base[1] - 1, 3)
    b = {name: round(min(v), 2) for name, v in batches.items()}
    out["batch_cases"] = args.batch
    out["batch_s"] = b
    out["overhead_batch"] = round(b["qrtrace-2026"] / b["none"] - 1, 3)
    f2_all = [s[1] for s in sizes["qrtrace-2026"]]
    f2_close = [s[1] for s in sizes["qrtrace-2026 sources=close"]]
    close_share = [s[2] / max(1, s[0] + s[1]) for s in sizes["qrtrace-2026"] if s[0] + s[1]]
    out["f2_median_all_sources"] = float(np.median(f2_all))
    out["f2_median_close_sources"] = float(np.median(f2_close))
    out["close_share_median"] = round(float(np.median(close_share)), 3) if close_share else None
    out["within_20_percent"] = all(out[k] <= MAX_OVERHEAD for k in
                                   ("overhead_qrtrace-2026_p50", "overhead_qrtrace-2026_p95", "overhead_batch"))
    out["when"] = time.strftime("%Y-%m-%d")
    return out


if __name__ == "__main__":
    sys.exit(main())
