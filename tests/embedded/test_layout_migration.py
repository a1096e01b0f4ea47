# ruff: noqa: E501  (the v3 DDL is kept as qrtrace wrote it, one statement per string)
"""A store of layout v3 (visit versions UInt8, no withdrawn rows, no checkin_outcomes) opens as v5: each
visit's latest row is kept, the outcomes start as the outcomes on arrival, and a late check-in then
re-pairs a stored key over it (its rows go above the migrated ones). A store of layout v4 (no zones) opens
as v5: the zone columns are added (existing rows have none) and the views copy zone from then on."""

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
    "zone_columns": q("SELECT count() AS n FROM system.columns WHERE database = 'qrtrace' "
                      "AND name IN ('zone', 'zones') AND table NOT LIKE '%_mv'")["n"][0],
}))
store.close()
"""


def test_a_v3_store_opens_as_v5_with_its_visits_and_outcomes(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    for script in (V3_STORE,):
        done = subprocess.run([sys.executable, "-c", script, str(store)], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    opened = subprocess.run([sys.executable, "-c", OPEN, str(store)], capture_output=True, text=True, timeout=300)
    assert opened.returncode == 0, opened.stderr
    got = json.loads(opened.stdout)
    assert got["version"] == [5]
    assert got["zone_columns"] == 5
    assert got["visits"] == {"venue_id": ["V1"], "person": ["p1"], "start_us": [1626739200000000],
                             "end_us": [1626742800000000], "closed_by": [1], "version": [0], "withdrawn": [0]}
    assert got["by_person"] == [1]
    assert got["outcomes"] == {"scan_id": ["s-in", "s-out"], "outcome": ["opened", "closed"]}
    again = subprocess.run([sys.executable, "-c", OPEN, str(store)], capture_output=True, text=True, timeout=300)
    assert json.loads(again.stdout) == got  # opening it again changes nothing


# The v4 tables zones touch, as qrtrace wrote them (sinks/sql/schema.sql before zones), with a venue, a
# check-in and its visit.
V4_STATEMENTS = [
    "CREATE DATABASE IF NOT EXISTS qrtrace",
    "CREATE TABLE qrtrace.schema_meta (version UInt32, created_at_us Int64) ENGINE = TinyLog",
    "INSERT INTO qrtrace.schema_meta SELECT toUInt32(4), toInt64(1600000000000000)",
    "CREATE TABLE qrtrace.venues (venue_id String, name String, category String, commune_code String, capacity UInt32, "
    "registered_at_us Int64) ENGINE = ReplacingMergeTree(registered_at_us) ORDER BY venue_id",
    "CREATE TABLE qrtrace.checkins (scan_id String, venue_id String, person String, direction Int8, "
    "event_time_us Int64, offset_minutes Int16, mode String, scanner_id String, declaration_sealed String, "
    "outcome String, ingested_at_us Int64) ENGINE = ReplacingMergeTree PARTITION BY intDiv(event_time_us, 86400000000) "
    "ORDER BY (venue_id, event_time_us, scan_id)",
    "CREATE TABLE qrtrace.visits_by_venue (venue_id String, person String, start_us Int64, end_us Int64, closed_by Int8, "
    "version UInt64, opened_by String, start_bucket UInt32 DEFAULT toUInt32(intDiv(start_us, 21600000000)), "
    "withdrawn UInt8 DEFAULT 0) ENGINE = ReplacingMergeTree(version) PARTITION BY intDiv(start_us, 86400000000) "
    "PRIMARY KEY (venue_id, start_bucket) ORDER BY (venue_id, start_bucket, start_us, person, opened_by)",
    "CREATE TABLE qrtrace.visits_by_person (venue_id String, person String, start_us Int64, end_us Int64, "
    "closed_by Int8, version UInt64, opened_by String, withdrawn UInt8 DEFAULT 0) ENGINE = ReplacingMergeTree(version) "
    "PARTITION BY intDiv(start_us, 86400000000) PRIMARY KEY (person, start_us) ORDER BY (person, start_us, venue_id, opened_by)",
    "CREATE MATERIALIZED VIEW qrtrace.visits_by_person_mv TO qrtrace.visits_by_person AS SELECT venue_id, person, "
    "start_us, end_us, closed_by, version, opened_by, withdrawn FROM qrtrace.visits_by_venue",
    "CREATE TABLE qrtrace.visit_feed (stored_at DateTime, venue_id String, person String, start_us Int64, end_us Int64, "
    "version UInt64, opened_by String, withdrawn UInt8) ENGINE = MergeTree PARTITION BY intDiv(toUInt32(stored_at), 86400) "
    "ORDER BY stored_at",
    "CREATE MATERIALIZED VIEW qrtrace.visit_feed_mv TO qrtrace.visit_feed AS SELECT now() AS stored_at, venue_id, person, "
    "start_us, end_us, version, opened_by, withdrawn FROM qrtrace.visits_by_venue",
    # INSERT ... SELECT, not VALUES: clickhouse-driver (the server test reuses these) sends VALUES data apart
    "INSERT INTO qrtrace.venues SELECT 'V1', 'Chợ', 'market', '08662', toUInt32(500), toInt64(1)",
    "INSERT INTO qrtrace.checkins SELECT 's-in', 'V1', 'p1', toInt8(1), toInt64(1626739200000000), toInt16(420), "
    "'venue_qr', 'S', '', 'opened', toInt64(1)",
    "INSERT INTO qrtrace.visits_by_venue (venue_id, person, start_us, end_us, closed_by, version, opened_by) SELECT "
    "'V1', 'p1', toInt64(1626739200000000), toInt64(1626742800000000), toInt8(0), toUInt64(1), 's-in'",
]
V4_STORE = f"""
import sys
from chdb import session
s = session.Session(sys.argv[1] + "/chdb")
for sql in {V4_STATEMENTS!r}:
    s.query(sql)
s.close()
"""
OPEN_V4 = """
import json, sys
from pathlib import Path
from qrtrace.sinks.chdb_store import ChdbStore
store = ChdbStore(Path(sys.argv[1]))
q = store.query
before = {t: q(f"SELECT zone FROM qrtrace.{t}")["zone"] for t in ("checkins", "visits_by_venue", "visits_by_person",
                                                                   "visit_feed")}
if sys.argv[2] == "insert":  # a zoned visit written after the migration reaches both views with its zone
    store.insert("qrtrace.visits_by_venue", {"venue_id": ["V1"], "person": ["p2"], "start_us": [1626739300000000],
                 "end_us": [1626739400000000], "closed_by": [1], "version": [1], "opened_by": ["s-z"],
                 "withdrawn": [0], "zone": ["Khu A"]})
print(json.dumps({
    "version": q("SELECT max(version) AS v FROM qrtrace.schema_meta")["v"],
    "zones": q("SELECT venue_id, zones FROM qrtrace.venues FINAL"),
    "before": before,
    "by_person": q("SELECT person, zone FROM qrtrace.visits_by_person FINAL ORDER BY person"),
    "feed": q("SELECT person, zone FROM qrtrace.visit_feed ORDER BY person"),
}))
store.close()
"""


def test_a_v4_store_opens_as_v5_with_zone_columns_and_views_that_carry_zone(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    made = subprocess.run([sys.executable, "-c", V4_STORE, str(store)], capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    opened = subprocess.run([sys.executable, "-c", OPEN_V4, str(store), "insert"], capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    got = json.loads(opened.stdout)
    assert got["version"] == [5]
    assert got["zones"] == {"venue_id": ["V1"], "zones": [""]}
    assert got["before"] == {"checkins": [""], "visits_by_venue": [""], "visits_by_person": [""], "visit_feed": [""]}
    assert got["by_person"] == {"person": ["p1", "p2"], "zone": ["", "Khu A"]}
    assert got["feed"] == {"person": ["p1", "p2"], "zone": ["", "Khu A"]}
    again = subprocess.run([sys.executable, "-c", OPEN_V4, str(store), "read"], capture_output=True, text=True,
                           timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["by_person"] == got["by_person"]  # opening it again changes nothing
