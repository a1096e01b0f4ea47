"""The same check-ins give the same store, however they arrive: one simulated day (retries, repeat scans,
missing check-outs, bad records, and deliveries up to six hours late) ingested through the CLI at three
batch sizes and in shuffled order must leave identical check-in outcomes, visits and dead letters, row
for row. Before order-independent pairing these differed by tens to thousands of rows."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from qrtrace.domain.venues import write_venues_csv
from qrtrace.producers.simulator import SimulationConfig, build_district, checkin_batches
from tests.embedded.conftest import run_cli

pytestmark = pytest.mark.embedded

START = datetime(2021, 7, 20, tzinfo=timezone(timedelta(hours=7)))
# The receiving clock a day and a half after the simulated day: every scan is inside the 21-day window.
ENV = {"QRTRACE_NOW": "2021-07-22T12:00:00+07:00"}

# The store's visible rows, in one canonical order (visit versions differ by design: more batches, more
# re-pairings; what a reader sees must not). Withdrawn visits are not visible.
DUMP = r"""
import json, sys
from qrtrace.embedded import EmbeddedRuntime
from qrtrace.settings import settings_from_env
with EmbeddedRuntime(settings_from_env()) as rt:
    q = rt.store.query
    out = {
        "outcomes": q("SELECT scan_id, outcome FROM qrtrace.checkin_outcomes FINAL ORDER BY scan_id"),
        "visits": q("SELECT venue_id, person, start_us, end_us, closed_by, opened_by FROM "
                    "(SELECT * FROM qrtrace.visits_by_venue FINAL) WHERE withdrawn = 0 "
                    "ORDER BY venue_id, person, start_us, opened_by"),
        "by_person": q("SELECT count() AS n FROM (SELECT * FROM qrtrace.visits_by_person FINAL) WHERE withdrawn = 0"),
        "dead_letters": q("SELECT dl_id, reason FROM qrtrace.dead_letters FINAL ORDER BY dl_id"),
        "occupancy": q("SELECT venue_id, window_start_us, arrivals, present FROM qrtrace.occupancy FINAL "
                       "WHERE present > 0 OR arrivals > 0 ORDER BY venue_id, window_start_us"),
    }
json.dump(out, sys.stdout)
"""


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[bytes]]:
    base = tmp_path_factory.mktemp("determinism")
    config = SimulationConfig(seed=4242, start=START, days=1, population=4_000, late_share=0.05,
                              max_late_minutes=360)  # fmt: skip
    district = build_district(config)
    lines = [line for batch in checkin_batches(district, 10_000) for line in batch]
    venues = base / "venues.csv"
    write_venues_csv(venues, district.venues)
    return base, venues, lines


def ingest(base: Path, venues: Path, name: str, lines: list[bytes], batch_size: int) -> dict:
    store, keys = base / name, base / "keys.json"  # one key file: the same pseudonyms in every store
    env = {**ENV, "QRTRACE_KEY_FILE": str(keys), "QRTRACE_BATCH_SIZE": str(batch_size)}
    events = base / f"{name}.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    run_cli("venues", "import", str(venues), store=store, env=env)
    report = json.loads(run_cli("ingest", str(events), "--json", store=store, env=env).stdout)
    full_env = {**os.environ, "QRTRACE_STORE": str(store), **env}
    dumped = subprocess.run([sys.executable, "-c", DUMP], capture_output=True, text=True, env=full_env,
                            timeout=600, check=True)  # fmt: skip
    return {"report": report, **json.loads(dumped.stdout)}


def test_batch_sizes_and_delivery_order_do_not_change_the_store(day) -> None:  # type: ignore[no-untyped-def]
    base, venues, lines = day
    runs = {"one batch": ingest(base, venues, "one", lines, 50_000)}
    runs["batches of 1,000"] = ingest(base, venues, "b1000", lines, 1_000)
    runs["batches of 7,919"] = ingest(base, venues, "b7919", lines, 7_919)
    shuffled = list(lines)
    random.Random(7).shuffle(shuffled)  # a whole day out of order: every scan still within the 48 h window
    runs["shuffled, batches of 2,000"] = ingest(base, venues, "shuffled", shuffled, 2_000)
    reference = runs["one batch"]
    assert len(reference["visits"]["start_us"]) > 5_000 and len(reference["outcomes"]["scan_id"]) > 10_000
    assert reference["by_person"]["n"] == [len(reference["visits"]["start_us"])]
    assert reference["dead_letters"]["reason"]  # the bad records, at least
    for name, run in runs.items():
        for table in ("outcomes", "visits", "dead_letters", "occupancy"):
            want = list(zip(*reference[table].values(), strict=True))
            got = list(zip(*run[table].values(), strict=True))
            assert got == want, f"{name}: {table} differ in {len(set(got) ^ set(want))} rows"
        same = ("received", "dead_lettered")  # outcomes on arrival depend on the order; these do not
        assert {k: run["report"][k] for k in same} == {k: reference["report"][k] for k in same}, name
