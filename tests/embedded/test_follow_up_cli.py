"""`qrtrace follow-up` through the real CLI on the worked example (small-wave): a stored trace run's contacts
become records (once), listed per commune, changed with one clear error line for a bad status or id, a positive
contact declared as a case, and exported in the documented layouts."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from qrtrace.queries.follow_up import GODATA_COLUMNS, SORMAS_COLUMNS
from tests.conftest import SMALL_WAVE
from tests.embedded.conftest import REPLAY_2021, run_cli

pytestmark = pytest.mark.embedded

CASE = "09381480988"
# A trace run stored as the API stores one (trace_exposures rows, then its trace_runs row), in a child process:
# chDB is one engine per process.
STORE_RUN = """
import sys
from datetime import datetime
from qrtrace.embedded import EmbeddedRuntime
from qrtrace.queries.risk import load_rule
from qrtrace.queries.trace import CaseQuery, TraceRules, exposure_rows
from qrtrace.settings import settings_from_env
from qrtrace.sinks.trace_runs import write_exposures, write_run

def us(text):
    return int(datetime.fromisoformat(text).timestamp() * 1_000_000)

with EmbeddedRuntime(settings_from_env()) as rt:
    start, end = us("2021-07-20T00:00:00+07:00"), us("2021-07-21T00:00:00+07:00")
    person = rt.declare_case("C-1", sys.argv[1], start, end)
    rules = TraceRules(depth=2, until_us=us("2021-07-25T00:00:00+07:00"), risk=load_rule(None))
    rows = 0
    for first, batch in rt.trace_chunks([CaseQuery("C-1", person, start, end)], rules, "test", rt.audit):
        table = exposure_rows(batch, first)
        rows += len(table["person"])
        write_exposures(rt.store, "tr-cli", 1, table)
    write_run(rt.store, "tr-cli", 1, 2, "epi", ["C-1"], "test", rules,
              [{"case_id": "C-1", "case": person, "rule": "x", "contacts_count": 0, "exposure_rows": rows}])
"""


@pytest.fixture
def store(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    run_cli("venues", "import", str(SMALL_WAVE / "venues.csv"), store=store, env=REPLAY_2021)
    run_cli("ingest", str(SMALL_WAVE / "events.jsonl"), store=store, env=REPLAY_2021)
    import os

    env = {**os.environ, "QRTRACE_STORE": str(store), **REPLAY_2021}
    proc = subprocess.run([sys.executable, "-c", STORE_RUN, CASE], capture_output=True, text=True, env=env,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return store


def _one_error_line(proc: subprocess.CompletedProcess, words: str) -> None:
    assert proc.returncode == 1 and words in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_follow_up_from_a_stored_trace_to_a_declared_case(store: Path, tmp_path: Path) -> None:
    created = run_cli("follow-up", "create", "--trace", "tr-cli", store=store, env=REPLAY_2021).stdout
    assert "created" in created and "created 0" not in created
    again = run_cli("follow-up", "create", "--trace", "tr-cli", store=store, env=REPLAY_2021).stdout
    assert "created 0" in again
    records = json.loads(run_cli("follow-up", "list", "--json", store=store, env=REPLAY_2021).stdout)
    assert records and {r["case_id"] for r in records} == {"C-1"} and {r["status"] for r in records} == {"not_reached"}
    venues = {row["venue_id"]: row["commune_code"] for row in csv.DictReader((SMALL_WAVE / "venues.csv").open())}
    assert all(r["commune_code"] == venues[r["venue_id"]] for r in records)
    commune = records[0]["commune_code"]
    only = json.loads(run_cli("follow-up", "list", "--commune", commune, "--json", store=store, env=REPLAY_2021).stdout)
    assert {r["commune_code"] for r in only} == {commune} and len(only) == sum(r["commune_code"] == commune
                                                                                for r in records)  # fmt: skip
    fid = records[0]["follow_up_id"]
    _one_error_line(run_cli("follow-up", "set", fid, "--status", "cured", store=store, check=False, env=REPLAY_2021),
                    "Unknown status")  # fmt: skip
    _one_error_line(run_cli("follow-up", "set", "fu-nope", "--status", "reached", store=store, check=False,
                            env=REPLAY_2021), "No follow-up record fu-nope")  # fmt: skip
    run_cli("follow-up", "set", fid, "--status", "reached", "--note", "đã gọi", store=store, env=REPLAY_2021)
    out = run_cli("follow-up", "set", fid, "--status", "tested_positive", "--date", "2021-07-23T09:00:00+07:00",
                  "--case-id", "C-2", store=store, env=REPLAY_2021).stdout  # fmt: skip
    assert "C-2" in out
    _one_error_line(run_cli("follow-up", "set", fid, "--status", "reached", store=store, check=False,
                            env=REPLAY_2021), "final")  # fmt: skip
    after = {r["follow_up_id"]: r for r in json.loads(run_cli("follow-up", "list", "--json", store=store,
                                                              env=REPLAY_2021).stdout)}  # fmt: skip
    assert after[fid]["status"] == "tested_positive" and after[fid]["new_case_id"] == "C-2"
    assert after[fid]["notes"] == "đã gọi"
    for fmt, header in (("sormas", list(SORMAS_COLUMNS)), ("godata", list(GODATA_COLUMNS))):
        path = tmp_path / f"{fmt}.csv"
        run_cli("follow-up", "export", "--format", fmt, "-o", str(path), store=store, env=REPLAY_2021)
        rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
        assert header in rows[:2] and len(rows) - rows.index(header) - 1 == len(records)
        assert path.stat().st_mode & 0o077 == 0
