"""What order-independent pairing costs the embedded ingest: this tree's `ingest_bench.py` and a previous
commit's, on the same simulated district, alternately in one run (the machine is shared and noisy).

    .venv/bin/python benchmarks/ingest_vs_previous.py --baseline-tree /path/to/checkout-of-83efe8f \
        [--population 20000] [--days 3] [--rounds 2] [--out benchmarks/results/ingest-vs-previous.json]

The baseline tree needs its own `.venv` (`make` in it). Each round runs the baseline, then this tree, each
`ingest_bench.py --runs 1 --naive-events 0` in its own process on fresh stores; the result is the best
events/s of each side and their ratio (ours / previous).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def one_run(tree: Path, population: int, days: int, out: Path) -> dict:
    cmd = [str(tree / ".venv" / "bin" / "python"), str(tree / "benchmarks" / "ingest_bench.py"), "--population",
           str(population), "--days", str(days), "--runs", "1", "--naive-events", "0", "--out", str(out)]  # fmt: skip
    subprocess.run(cmd, cwd=tree, check=True, timeout=3600, stdout=subprocess.DEVNULL)
    result = json.loads(out.read_text())
    return {"events_per_s": result["events_per_s"], "events": result["events"],
            "seconds": result["runs"][0]["seconds"], "visits_stored": result["visits_stored"]}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline-tree", type=Path, required=True)
    p.add_argument("--population", type=int, default=20_000)
    p.add_argument("--days", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", type=Path, default=HERE / "benchmarks" / "results" / "ingest-vs-previous.json")
    a = p.parse_args(argv)
    runs: dict[str, list[dict]] = {"previous": [], "ours": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.rounds):  # bounded: a.rounds x 2 runs
            for side, tree in (("previous", a.baseline_tree), ("ours", HERE)):
                runs[side].append(one_run(tree, a.population, a.days, Path(tmp) / f"{side}-{i}.json"))
                print(f"round {i + 1} {side}: {runs[side][-1]['events_per_s']:,} events/s", file=sys.stderr)
    best = {side: max(r["events_per_s"] for r in rs) for side, rs in runs.items()}
    commit = subprocess.run(["git", "-C", str(a.baseline_tree), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip()  # fmt: skip
    ratio = round(best["ours"] / best["previous"], 3)
    result = {"population": a.population, "days": a.days, "rounds": a.rounds, "baseline_commit": commit,
              "runs": runs, "best_events_per_s": best, "ratio_ours_to_previous": ratio}  # fmt: skip
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["best_events_per_s"]), "ratio", result["ratio_ours_to_previous"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
