"""One scanner request is one ingest pass in embedded mode: what does a one-scan pass cost, with the
runtime's cached edge and venue registry against rebuilding them per pass (the code before), in the
same run on the same store. Not a test: prints the figures and writes results/scan_pass.json.

    .venv/bin/python benchmarks/scan_pass_bench.py [--passes 60] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {**os.environ, "QRTRACE_KEY_FILE": str(root / "keys.json"), "QRTRACE_TOKEN_FILE": str(root / "t.json")}
        qrtrace = str(Path(sys.executable).parent / "qrtrace")
        subprocess.run([qrtrace, "demo", "--store", str(root / "store"), "--population", "2500", "--days", "1"],
                       env=env, check=True, capture_output=True, timeout=600)  # fmt: skip
        os.environ.update({k: env[k] for k in ("QRTRACE_KEY_FILE", "QRTRACE_TOKEN_FILE")})
        rounds = measure(root, args.passes, args.rounds)
    best = min(rounds, key=lambda r: r["cached_ms"])
    out = {"passes_per_round": args.passes, "rounds": rounds, "cached_ms": best["cached_ms"],
           "rebuilt_ms": best["rebuilt_ms"], "ratio": round(best["rebuilt_ms"] / best["cached_ms"], 2)}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scan_pass.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


def measure(root: Path, passes: int, rounds: int) -> list[dict]:
    import qrtrace.embedded as embedded
    from qrtrace.embedded import EmbeddedRuntime
    from qrtrace.settings import settings_from_env

    settings = settings_from_env().with_overrides(store=str(root / "store"), actor="bench")
    now = datetime.now(UTC) - timedelta(minutes=1)
    with EmbeddedRuntime(settings) as rt:
        venue = rt.venues()[0].venue_id
        regulars = [f"0955{i:06d}" for i in range(20)]  # a venue's regulars: each scans several times

        def run(n: int, tag: str) -> float:
            started = time.perf_counter()
            for i in range(n):
                line = json.dumps({"scan_id": f"{tag}-{uuid.uuid4().hex}", "venue_id": venue,
                                   "person_id": regulars[i % len(regulars)], "direction": "in" if i % 2 == 0 else "out",
                                   "event_time": now.isoformat(timespec="seconds"), "mode": "personal_qr",
                                   "scanner_id": "bench"}).encode()  # fmt: skip
                report = rt.ingest([[line]], source="bench")
                assert report.received == 1 and report.dead_lettered in (0, 1)
            return 1000 * (time.perf_counter() - started) / n

        run(5, "warm")
        out = []
        for r in range(rounds):
            embedded.VENUE_REGISTRY_TTL_S = 0.0  # rebuilt every pass: the code before the cache
            rebuilt = run(passes, f"rebuilt{r}")
            embedded.VENUE_REGISTRY_TTL_S = 5.0
            cached = run(passes, f"cached{r}")
            out.append({"rebuilt_ms": round(rebuilt, 1), "cached_ms": round(cached, 1)})
            print(f"round {r + 1}: one-scan pass {rebuilt:.1f} ms rebuilt, {cached:.1f} ms cached "
                  f"({rebuilt / cached:.2f}x)")  # fmt: skip
    return out


if __name__ == "__main__":
    main()
