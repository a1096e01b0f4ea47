"""Visits of another shape than national_data.py, for `trace_bench.py --visits` (held-out data).

No routines, no communes, no categories: venue popularity is log-normal (sigma 1.5: a few venues draw
hundreds of visits a day, a long tail draws a handful a week), visits fall at any hour of any day,
stays are log-normal (median 40 minutes, up to 20 hours), and a tenth of the people make 60 % of the
visits. (A Zipf law was tried first: at exponent 1.3 one venue takes a quarter of all visits, 120,000 a
day, and a single case's F2 is most of the population; no wave looks like that.)
Written as Parquet (person, venue, start, end; Unix seconds).

    .venv/bin/python benchmarks/other_shape.py --rows 10000000 -o /tmp/other-10m.parquet
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

START_S = 1_626_652_800  # 2021-07-19 00:00 UTC
DAYS = 21


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    n = args.rows
    people, venues = max(1, n // 8), max(1, n // 300)
    # a tenth of the people make 60 % of the visits
    busy = rng.random(n) < 0.6
    person = np.where(busy, rng.integers(0, max(1, people // 10), n), rng.integers(0, people, n))
    weight = rng.lognormal(0.0, 1.5, venues)
    venue = rng.choice(venues, n, p=weight / weight.sum())
    start = START_S + rng.integers(0, DAYS * 86_400, n)
    stay = np.minimum(np.exp(rng.normal(np.log(40 * 60), 1.0, n)), 20 * 3600).astype(np.int64) + 60
    table = pa.table(
        {
            "person": pa.array([f"h{x:09d}" for x in person.tolist()]),
            "venue": pa.array([f"Z{x:07d}" for x in venue.tolist()]),
            "start": pa.array(start, pa.int64()),
            "end": pa.array(start + stay, pa.int64()),
        }
    )
    pq.write_table(table, args.output)
    print(f"{n:,} visits of {len(np.unique(person)):,} people at {len(np.unique(venue)):,} venues -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
