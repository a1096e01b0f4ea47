# ruff: noqa: E501  (the v3 DDL is kept as qrtrace wrote it, one statement per string)
"""A store of layout v3 (visit versions UInt8, no withdrawn rows, no checkin_outcomes) opens as v4: each
visit's latest row is kept, the outcomes start as the outcomes on arrival, and a late check-in then
re-pairs a stored key over it (its rows go above the migrated ones)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.embedded

# The v3 tables a check-in touches, as qrtrace wrote them: a provisional and a final row of one visit.
V3_STORE = """
import sys
from chdb import session
s = session.Session(sys.argv[1] + "/chdb")
for sql in [
    "CREATE DATABASE IF NOT EXISTS qrtrace",
    "CREATE TABLE qrtrace.schema_meta (version UInt32, created_at_us Int64) ENGINE = TinyLog",
    "INSERT INTO qrtrace.schema_meta VALUES (3, 1600000000000000)",
    "CREATE TABLE qrtrace.checkins (scan_id String, venue_id String, person String, direction Int8, "
    "event_time_us Int64, offset_minutes Int16, mode String, scanner_id String, declaration_sealed String, "
    "outcome String, ingested_at_us Int64) ENGINE = ReplacingMergeTree PARTITION BY intDiv(event_time_us, 86400000000) "
    "ORDER BY (venue_id, event_time_us, scan_id)",
    "CREATE TABLE qrtrace.visits_by_venue (venue_id String, person String, start_us Int64, end_us Int64, "
    "closed_by Int8, version UInt8, opened_by String, start_bucket UInt32 DEFAULT toUInt32(intDiv(start_us, 21600000000))) "
    "ENGINE = ReplacingMergeTree(version) PARTITION BY intDiv(start_us, 86400000000) PRIMARY KEY (venue_id, start_bucket) "
    "ORDER BY (venue_id, start_bucket, start_us, person, opened_by)",
    "CREATE TABLE qrtrace.visits_by_person (venue_id String, person String, start_us Int64, end_us Int64, "
    "closed_by Int8, version UInt8, opened_by String) ENGINE = ReplacingMergeTree(version) "
    "PARTITION BY intDiv(start_us, 86400000000) PRIMARY KEY (person, start_us) ORDER BY (person, start_us, venue_id, opened_by)",
    "CREATE MATERIALIZED VIEW qrtrace.visits_by_person_mv TO qrtrace.visits_by_person AS SELECT venue_id, person, "
    "start_us, end_us, closed_by, version, opened_by FROM qrtrace.visits_by_venue",
    "INSERT INTO qrtrace.checkins VALUES ('s-in', 'V1', 'p1', 1, 1626739200000000, 420, 'venue_qr', 'S', '', 'opened', 1), "
    "('s-out', 'V1', 'p1', -1, 1626742800000000, 420, 'venue_qr', 'S', '', 'closed', 1)",
    "INSERT INTO qrtrace.visits_by_venue (venue_id, person, start_us, end_us, closed_by, version, opened_by) VALUES "
    "('V1', 'p1', 1626739200000000, 1626742800000000, 0, 0, 's-in')",
    "INSERT INTO qrtrace.visits_by_venue (venue_id, person, start_us, end_us, closed_by, version, opened_by) VALUES "
    "('V1', 'p1', 1626739200000000, 1626742800000000, 1, 1, 's-in')",
]:
    s.query(sql)
s.close()
"""
OPEN = """
import json, sys
from pathlib import Path
from qrtrace.sinks.chdb_store import ChdbStore
store = ChdbStore(Path(sys.argv[1]))
q = store.query
print(json.dumps({
    "version": q("SELECT max(version) AS v FROM qrtrace.schema_meta")["v"],
    "visits": q("SELECT venue_id, person, start_us, end_us, closed_by, version, withdrawn "
                "FROM qrtrace.visits_by_venue FINAL"),
    "by_person": q("SELECT count() AS n FROM qrtrace.visits_by_person FINAL")["n"],
    "outcomes": q("SELECT scan_id, outcome FROM qrtrace.checkin_outcomes FINAL ORDER BY scan_id"),
}))
store.close()
"""


def test_a_v3_store_opens_as_v4_with_its_visits_and_outcomes(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    for script in (V3_STORE,):
        done = subprocess.run([sys.executable, "-c", script, str(store)], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    opened = subprocess.run([sys.executable, "-c", OPEN, str(store)], capture_output=True, text=True, timeout=300)
    assert opened.returncode == 0, opened.stderr
    got = json.loads(opened.stdout)
    assert got["version"] == [4]
    assert got["visits"] == {"venue_id": ["V1"], "person": ["p1"], "start_us": [1626739200000000],
                             "end_us": [1626742800000000], "closed_by": [1], "version": [0], "withdrawn": [0]}
    assert got["by_person"] == [1]
    assert got["outcomes"] == {"scan_id": ["s-in", "s-out"], "outcome": ["opened", "closed"]}
    again = subprocess.run([sys.executable, "-c", OPEN, str(store)], capture_output=True, text=True, timeout=300)
    assert json.loads(again.stdout) == got  # opening it again changes nothing
