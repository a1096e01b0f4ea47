"""The ClickHouse server store (Debian's 18.16) against the embedded one (chDB): same SQL, same answers.

One server for the session, started by infra/clickhouse/start.sh in a temporary directory on loopback
and stopped by infra/clickhouse/stop.sh (by its recorded pid). Installing it needs apt-get and root: a
machine that cannot install it fails this tier with the reason instead of skipping it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from qrtrace.domain.admin_units import load_communes
from qrtrace.domain.categories import load_categories
from qrtrace.domain.venues import read_venues_csv
from qrtrace.errors import StoreError
from qrtrace.identity import Pseudonymiser, Vault
from qrtrace.producers.edge import CONTACT_CONTEXT, IDENTITY_CONTEXT, Edge
from qrtrace.queries.coverage import coverage_report
from qrtrace.queries.reidentify import contact_history, reidentify
from qrtrace.queries.trace import CaseQuery, TraceResult, TraceRules, trace_case
from qrtrace.queries.visit_reader import StoreHopReader
from qrtrace.sinks.audit import AuditLog
from qrtrace.sinks.chdb_store import ChdbStore
from qrtrace.sinks.clickhouse_sql import load_sql, render
from qrtrace.sinks.clickhouse_store import ClickHouseStore
from qrtrace.sinks.history import stored_history
from qrtrace.sinks.repair import repair_store
from qrtrace.sinks.retention import DAY_PARTITIONED, drop_expired_partitions
from qrtrace.sinks.store import SCHEMA_VERSION, Store, migrate_contacts
from qrtrace.sinks.writer import StoreWriter, write_rows
from qrtrace.stream_processors.batch import US_PER_DAY, US_PER_MINUTE
from qrtrace.stream_processors.pipeline import CheckinProcessor, ProcessorConfig
from tests.conftest import REPO, SMALL_WAVE

pytestmark = pytest.mark.distributed

INFRA = REPO / "infra" / "clickhouse"
M = US_PER_MINUTE
PSEUDONYM_KEY = bytes(range(32))
VAULT_KEY = bytes(range(32, 64))
INGESTED_AT = 1_626_800_000_000_000
CASE_ID = "09381480988"  # the small-wave case (tests/fixtures/small-wave/expected.json)
FROM = datetime.fromisoformat("2021-07-20T00:00:00+07:00")
TO = datetime.fromisoformat("2021-07-21T00:00:00+07:00")
UNTIL = datetime.fromisoformat("2021-07-25T00:00:00+07:00")


def _us(t: datetime) -> int:
    return int(t.timestamp()) * 1_000_000


def _script(name: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "QRTRACE_PYTHON": sys.executable}
    return subprocess.run(
        ["bash", str(INFRA / name), *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


def _must(proc: subprocess.CompletedProcess, what: str) -> None:
    if proc.returncode != 0:
        pytest.fail(f"{what} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}", pytrace=False)


def _start(state: Path) -> str:
    _must(_script("start.sh", str(state), timeout=120), f"infra/clickhouse/start.sh {state}")
    return (state / "url").read_text().strip()


def _stop(state: Path, *flags: str) -> None:
    _must(_script("stop.sh", str(state), *flags, timeout=90), f"infra/clickhouse/stop.sh {state}")


@pytest.fixture(scope="session")
def clickhouse_installed() -> None:
    proc = _script("install.sh", timeout=900)
    if proc.returncode != 0:
        pytest.fail(
            "The distributed tier needs a ClickHouse server and infra/clickhouse/install.sh could not install one "
            f"(exit {proc.returncode}; it needs apt-get and root or passwordless sudo):\n{proc.stdout}\n{proc.stderr}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def server_state(clickhouse_installed: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    state = tmp_path_factory.mktemp("clickhouse-server")
    try:  # a start that timed out still recorded its pid: stop that one too
        _start(state)
        yield state
    finally:
        _stop(state)


@pytest.fixture(scope="session")
def server(server_state: Path) -> Iterator[ClickHouseStore]:
    store = ClickHouseStore((server_state / "url").read_text().strip())
    yield store
    store.close()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbStore]:
    store = ChdbStore(tmp_path_factory.mktemp("chdb-store"))
    yield store
    store.close()


# -- the same small dataset in both stores, through the real edge, processor and writer --------------


def ingest_small_wave(store: Store, folder: Path = SMALL_WAVE) -> None:
    venues = read_venues_csv(folder / "venues.csv")
    categories = load_categories()
    writer = StoreWriter(store)
    writer.reference_data(list(categories.values()), load_communes())
    writer.venues(venues, INGESTED_AT)
    edge = Edge(Pseudonymiser(PSEUDONYM_KEY), Vault(VAULT_KEY), {v.venue_id for v in venues})
    processor = CheckinProcessor(
        ProcessorConfig(
            dwell_us_by_venue={v.venue_id: categories[v.category].default_dwell_minutes * M for v in venues},
            capacity_by_venue={v.venue_id: v.capacity for v in venues},
        )
    )

    def write(out) -> None:  # type: ignore[no-untyped-def]
        write_rows(writer, out, INGESTED_AT)
        writer.dead_letters(out.dead_letters, "test", INGESTED_AT)

    lines = (folder / "events.jsonl").read_bytes().splitlines()
    for part in (lines[:50], lines[50:100], lines[100:]):  # several batches: provisional visits get replaced
        admitted = edge.admit(part)
        ids = admitted.identities
        writer.identities(ids.person, ids.identifier_sealed, ids.contact_sealed, INGESTED_AT)
        writer.dead_letters(admitted.dead_letters, "test", INGESTED_AT)
        write(processor.process(admitted.checkins, history=lambda wanted: stored_history(store, wanted)))


@pytest.fixture(scope="module")
def wave(server: ClickHouseStore, embedded: ChdbStore) -> tuple[ClickHouseStore, ChdbStore]:
    for store in (server, embedded):
        for table in (*DAY_PARTITIONED, "venues", "identity_vault", "contact_details"):
            store.execute(f"TRUNCATE TABLE qrtrace.{table}")
        ingest_small_wave(store)
    return server, embedded


def rows(result: dict[str, list]) -> list[tuple]:
    return sorted(zip(*result.values(), strict=True))


def shape(result: TraceResult) -> list[tuple]:
    return [(c.person, c.hop, c.first_exposure, c.exposures) for c in result.contacts]


# -- server life cycle ------------------------------------------------------------------------------


def test_server_listens_on_loopback_only(server_state: Path) -> None:
    url = (server_state / "url").read_text().strip()
    port = int((server_state / "native_port").read_text())
    assert url == f"clickhouse://127.0.0.1:{port}/qrtrace"
    config = (server_state / "config.xml").read_text()
    assert re.findall(r"<listen_host>(.*?)</listen_host>", config) == ["127.0.0.1"]
    pid = int((server_state / "server.pid").read_text())
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    assert f"--config={server_state}/config.xml" in cmdline
    ports = {int((server_state / f).read_text()) for f in ("native_port", "http_port")}
    assert _listening(ports) == {("127.0.0.1", p) for p in ports}


def _listening(ports: set[int]) -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket on `ports`, IPv4 and IPv6, from /proc/net."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port = local.split(":")
            if state == "0A" and int(port, 16) in ports:  # 0A = LISTEN
                ip = ".".join(str(b) for b in reversed(bytes.fromhex(address))) if len(address) == 8 else address
                found.add((ip, int(port, 16)))
    return found


def test_restart_keeps_data_and_ports_and_kill_stops_the_recorded_pid(
    clickhouse_installed: None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    state = tmp_path_factory.mktemp("clickhouse-restart")
    try:
        url = _start(state)
        ports = (state / "native_port").read_text(), (state / "http_port").read_text()
        with ClickHouseStore(url) as store:
            store.insert("qrtrace.audit_log", {"at_us": [1], "actor": ["t"], "action": ["a"], "case_id": ["c"],
                                               "subject": [""], "purpose": ["p"], "detail": ["{}"]})  # fmt: skip
        first_pid = int((state / "server.pid").read_text())
        _stop(state)
        assert not (state / "server.pid").exists()
        assert not Path(f"/proc/{first_pid}/cmdline").exists() or not Path(f"/proc/{first_pid}/cmdline").read_bytes()
        assert _start(state) == url
        assert ((state / "native_port").read_text(), (state / "http_port").read_text()) == ports
        _must(_script("start.sh", str(state), timeout=120), "start.sh on a running server")  # no second server
        with ClickHouseStore(url) as store:
            assert store.query("SELECT actor FROM qrtrace.audit_log")["actor"] == ["t"]
    finally:
        _stop(state, "--kill")
    assert not (state / "server.pid").exists()
    _must(_script("stop.sh", str(state), timeout=30), "stop.sh with nothing running")


# -- the store --------------------------------------------------------------------------------------


def test_schema_bootstraps_twice_idempotently(server: ClickHouseStore) -> None:
    tables = "SELECT name FROM system.tables WHERE database = 'qrtrace' ORDER BY name"
    before = server.query(tables)["name"]
    with ClickHouseStore(server.url) as again:
        assert again.query(tables)["name"] == before
    with ClickHouseStore(server.url):
        pass
    assert server.query("SELECT version FROM qrtrace.schema_meta")["version"] == [SCHEMA_VERSION]
    assert {"checkins", "visits_by_venue", "visits_by_person", "visits_by_person_mv", "schema_meta"} <= set(before)


def test_errors_are_store_errors_with_the_cause(server: ClickHouseStore) -> None:
    with pytest.raises(StoreError, match="refused a statement") as refused:
        server.query("SELECT nope FROM qrtrace.no_such_table")
    assert refused.value.__cause__ is not None
    with pytest.raises(StoreError, match="cannot be reached"):
        ClickHouseStore("clickhouse://127.0.0.1:1/qrtrace", connect_timeout=1)
    assert server.query("SELECT 1 AS one")["one"] == [1]  # the connection survived the failed statement


def _visit(venue: str, person: str, start: int, end: int, closed_by: int, version: int, opened_by: str) -> dict:
    return {
        "venue_id": np.array([venue], dtype=object),
        "person": np.array([person], dtype=object),
        "start_us": np.array([start], dtype=np.int64),
        "end_us": np.array([end], dtype=np.int64),
        "closed_by": np.array([closed_by], dtype=np.int8),
        "version": np.array([version], dtype=np.uint8),
        "opened_by": np.array([opened_by], dtype=object),
    }


def _drop_days(store: Store, *days: int) -> None:
    """Tests that add visits on their own days take them out again, leaving only the shared dataset."""
    for table in ("visits_by_venue", "visits_by_person"):
        for day in days:
            store.execute(f"ALTER TABLE qrtrace.{table} DROP PARTITION {day}")


def test_final_replaces_provisional_visits_and_retries_do_not_duplicate(server: ClickHouseStore) -> None:
    start = 1_626_739_200_000_000 + 7 * US_PER_DAY
    day = start // US_PER_DAY
    provisional = _visit("V-DEDUP", "p-dedup", start, start + 60 * M, 0, 0, "scan-1")
    final = _visit("V-DEDUP", "p-dedup", start, start + 25 * M, 1, 1, "scan-1")
    try:
        server.insert("qrtrace.visits_by_venue", provisional)
        server.insert("qrtrace.visits_by_venue", final)
        server.insert("qrtrace.visits_by_venue", final)  # a retried batch
        for table in ("visits_by_venue", "visits_by_person"):
            got = server.query(
                f"SELECT end_us, closed_by, version FROM qrtrace.{table} FINAL WHERE venue_id = {{v:String}}",
                {"v": "V-DEDUP"},
            )
            assert rows(got) == [(start + 25 * M, 1, 1)], table
    finally:
        _drop_days(server, day)


def test_materialized_view_fills_visits_by_person(server: ClickHouseStore) -> None:
    start = 1_626_739_200_000_000 + 8 * US_PER_DAY
    n = 500
    try:
        _insert_many(server, start, n)
        sql = "SELECT venue_id, person, start_us, end_us FROM qrtrace.{t} FINAL WHERE startsWith(venue_id, 'V-MV')"
        by_venue = rows(server.query(sql.format(t="visits_by_venue")))
        assert len(by_venue) == n
        assert rows(server.query(sql.format(t="visits_by_person"))) == by_venue
    finally:
        _drop_days(server, start // US_PER_DAY)


def _insert_many(server: ClickHouseStore, start: int, n: int) -> None:
    server.insert(
        "qrtrace.visits_by_venue",
        {
            "venue_id": np.array([f"V-MV{i % 7}" for i in range(n)], dtype=object),
            "person": np.array([f"p-mv{i}" for i in range(n)], dtype=object),
            "start_us": start + np.arange(n, dtype=np.int64) * M,
            "end_us": start + np.arange(n, dtype=np.int64) * M + 30 * M,
            "closed_by": np.ones(n, np.int8),
            "version": np.ones(n, np.uint8),
            "opened_by": np.array([f"mv-{i}" for i in range(n)], dtype=object),
        },
    )


# -- the same SQL on both engines -------------------------------------------------------------------


BUCKET = 6 * 60 * M


def _params(name: str) -> list[dict[str, object]]:
    """Parameters as the Python callers pass them (queries/*.py, sinks/retention.py, qrtrace/demo.py)."""
    pseudonym = Pseudonymiser(PSEUDONYM_KEY)
    case = pseudonym.one(CASE_ID)
    others = pseudonym.many(["07597917319", "02315975045", "01721772554", "0000000000"])
    venues = [v.venue_id for v in read_venues_csv(SMALL_WAVE / "venues.csv")]
    period = {"since_us": _us(TO) - 2 * US_PER_DAY, "as_of_us": _us(TO)}
    return {
        "communes": [{}],
        "venues": [{}],
        "coverage_registered": [{}],
        "coverage_activity": [period, {"since_us": 0, "as_of_us": 1}],
        "coverage_commune_people": [period],
        "coverage_silent_venues": [period, {"since_us": 0, "as_of_us": 1}],
        "demo_case": [{"from_us": _us(FROM), "to_us": _us(TO), "seed": 7, "half_us": _us(TO)},
                      {"from_us": 0, "to_us": 1, "seed": 0, "half_us": 1}],
        "trace_sources": [
            {"persons": [case, *others], "min_start": _us(FROM), "max_start": _us(UNTIL)},
            {"persons": [case], "min_start": -(2**62), "max_start": _us(TO)},
        ],
        "trace_candidates": [
            {"cells": [(v, h) for v in venues for h in range(_us(FROM) // BUCKET, _us(TO) // BUCKET + 1)],
             "day_start": _us(FROM) // US_PER_DAY * US_PER_DAY, "day_end": (_us(TO) // US_PER_DAY + 1) * US_PER_DAY},
            {"cells": [(venues[0], _us(FROM) // BUCKET)], "day_start": 0, "day_end": 2**62},
        ],
        "sealed_identities": [{"persons": [case, *others]}, {"persons": []}],
        "sealed_contacts": [{"persons": [case, *others]}, {"persons": []}],
        "day_partitions": [{"tables": list(DAY_PARTITIONED)}, {"tables": []}],
        "cases_list": [{"limit": 10}],
        "cases_by_id": [{"case_ids": ["small-wave", "x'); DROP"]}, {"case_ids": []}],
        "trace_run": [{"trace_id": "none"}],
        "trace_runs_list": [{"limit": 5}],
        "trace_exposures_read": [{"trace_id": "none", "first_case": 0, "end_case": 3}],
        "trace_exposures_people": [{"trace_id": "none"}],
        "trace_exposures_drop": [{"trace_id": "none"}],
        "coverage_daily_trend": [{**period, "offset_us": 7 * 3600 * 10**6}, {"since_us": 0, "as_of_us": 1,
                                                                              "offset_us": 0}],
        "dead_letter_reasons": [{"since_us": 0}],
        "store_size": [{}],
        "audit_log_read": [{"since_us": 2**62, "action": "", "case_id": "", "limit": 10},
                           {"since_us": 0, "action": "trace", "case_id": "no-such-case", "limit": 10}],
        "ingest_rates": [{"since_us": 0}],
        "repair_future_checkins": [{"latest": _us(TO)}, {"latest": 2**62}],
        "repair_long_visits": [{"shortest_cap": 30 * M}, {"shortest_cap": 2**62}],
        "repair_future_checkout_visits": [{"latest": _us(FROM)}, {"latest": 2**62}],
        "pending_mutations": [{}],
        "venue_names": [{"venue_ids": venues[:3]}, {"venue_ids": ["no-such-venue"]}],
        "latest_checkin": [{"venues": venues}, {"venues": ["no-such-venue"]}],
        "stored_history_checkins": [{"venues": venues, "since": _us(FROM), "keys": [(v, case) for v in venues]},
                                    {"venues": ["x"], "since": 0, "keys": [("x", "y")]}],
        "stored_history_revisions": [{"venues": venues, "persons": [case, *others],
                                      "keys": [(v, p) for v in venues for p in (case, *others)]},
                                     {"venues": ["x"], "persons": ["y"], "keys": [("x", "y")]}],
        "audit_tail": [{}], "audit_page": [{"from_seq": 0, "to_seq": 50_000}], "audit_page_next": [{"after_seq": 0}],
        "audit_unchained": [{}], "audit_unchained_first": [{"after_us": 0}], "audit_columns": [{}],
        "trace_index_people": [{}], "trace_index_venues": [{}], "trace_index_days": [{}],
        "trace_index_day": [{"day_start": _us(FROM) // US_PER_DAY * US_PER_DAY,
                             "day_end": (_us(TO) // US_PER_DAY + 1) * US_PER_DAY}, {"day_start": 0, "day_end": 1}],
        "trace_index_feed": [{"since_s": 0}, {"since_s": 2**32 - 1}], "trace_index_feed_days": [{}],
        "trace_index_visits": [{"keys": [(v, case, _us(FROM)) for v in venues], "min_start": 0, "max_start": 2**62}],
        "store_identity": [{}], "store_clock": [{}],
        "trace_index_zones": [{}], "trace_exposures_columns": [{}],
        "risk_venues": [{}], "risk_over_capacity": [{"since_us": 0}, {"since_us": 2**62}],
        "hotspots_venues": [period, {"since_us": 0, "as_of_us": 1}],
        "hotspots_hours": [{**period, "offset_us": 7 * 3600 * 10**6}, {"since_us": 0, "as_of_us": 1, "offset_us": 0}],
        "exposure_site_venues": [{"venue_ids": venues}, {"venue_ids": ["no-such-venue"]}],
        "exposure_site_visits": [{"person": case, "min_start": _us(FROM) - US_PER_DAY, "to_us": _us(TO)},
                                 {"person": "nobody", "min_start": 0, "to_us": 1}],
        "exposure_sites_by_id": [{"site_ids": ["es-none"]}], "exposure_sites_of_case": [{"person": case}],
        "exposure_sites_read": [{}],
        "commune_names": [{}], "places": [{"venue_ids": venues}, {"venue_ids": []}],
        "outbox_known": [{"ids": ["m-none"]}], "outbox_rows": [{"ids": ["m-none"]}], "status_all": [{}],
        "status_of": [{"ids": ["m-none"]}], "status_pending": [{"statuses": ["queued", "failed"]}],
        "census_rows": [{}], "census_required": [{}], "census_unregistered": [{}],
        "follow_ups_read": [{"everyone": 1, "communes": [], "status": ""},
                            {"everyone": 0, "communes": ["100", "200"], "status": "reached"}],
        "follow_ups_by_id": [{"ids": ["fu-none"]}], "follow_up_history_read": [{"follow_up_id": "fu-none"}],
        "follow_up_venues": [{}], "follow_up_communes": [{}],
    }[name]  # fmt: skip


# What may differ between the engines by construction, so it is left out of the comparison.
COMPARABLE: dict[str, object] = {
    "sealed_identities": lambda r: r[0],  # sealing is randomised (AES-GCM nonces): compare who was found
    "sealed_contacts": lambda r: (r[0], r[2], r[3]),  # likewise: who, when and from where
    "store_size": lambda r: r[0],  # bytes and part layout differ per engine: compare which tables hold data
    "dead_letter_reasons": lambda r: r[:2],  # received_at_us is each store's own ingest time
    "ingest_rates": lambda r: r[1],  # likewise ingested_at_us (a minute may split differently): the outcomes
    "trace_index_days": lambda r: r[0],  # rows per day count unmerged versions: the part layout differs
    "trace_index_feed": lambda r: r[1:],  # stored_s is each store's own insert time
    "trace_index_feed_days": lambda r: len(r),  # likewise (the days of the inserts)
    "store_identity": lambda r: r[0] > 0,  # each store's own creation time
    "store_clock": lambda r: len(r),  # each store's own clock
}


SQL_FILES = sorted(
    [("qrtrace.queries", p.stem) for p in (REPO / "queries" / "sql").glob("*.sql")]
    + [("qrtrace.notify", p.stem) for p in (REPO / "notify" / "sql").glob("*.sql")]
    + [
        ("qrtrace.sinks", p.stem)
        for p in (REPO / "sinks" / "sql").glob("*.sql")
        # DDL, run by bootstrap_schema; chdb_tuning: chDB only, 18.16 has no such table setting;
        # audit_chain_columns: DDL (sinks/audit.py); migrate_contacts writes (its own test below);
        # repair_visit_spans writes too (test_repair_gives_the_same_store_on_both); migrate_v4_*: the v3 -> v4
        # layout migration, DDL and copies (tests/sinks/test_migration.py); migrate_v5_*: the v4 -> v5 zone
        # columns, DDL (test_a_v4_store_migrates_to_v5_on_the_server); trace_exposures_risk: DDL, the risk column
        # older stores get on open
        if p.stem not in ("schema", "trace_results", "chdb_tuning", "audit_chain_columns", "migrate_contacts",
                          "repair_visit_spans", "migrate_v4_before", "migrate_v4_after", "migrate_v5_have",
                          "migrate_v5_columns", "migrate_v5_views", "trace_exposures_risk")
    ]
)


@pytest.mark.parametrize(("package", "name"), SQL_FILES, ids=[n for _, n in SQL_FILES])
def test_every_query_file_gives_the_same_rows_on_both(wave, package: str, name: str) -> None:  # type: ignore[no-untyped-def]
    server, embedded = wave
    sql = load_sql(package, name)
    for params in _params(name):
        render(sql, params)  # every placeholder has a value
        got, want = rows(server.query(sql, params)), rows(embedded.query(sql, params))
        if name in COMPARABLE:
            keep = COMPARABLE[name]
            got, want = sorted({keep(r) for r in got}), sorted({keep(r) for r in want})  # type: ignore[operator]
        if name == "trace_index_feed":  # the server's feed also holds what earlier tests of the session stored
            assert set(want) <= set(got), params
            continue
        assert got == want, params
    if name in ("trace_sources", "trace_candidates", "coverage_activity", "day_partitions", "coverage_daily_trend",
                "store_size", "ingest_rates", "latest_checkin", "stored_history_checkins", "stored_history_revisions",
                "trace_index_people", "trace_index_day", "trace_index_feed", "hotspots_venues", "hotspots_hours"):
        assert rows(server.query(sql, _params(name)[0])), f"{name} found nothing on the small wave"


def test_trace_index_over_the_server_follows_its_feed_and_equals_the_store_reader(wave) -> None:  # type: ignore[no-untyped-def]
    """The trace index built from a ClickHouse server and caught up from its visit feed (rows a worker
    would store: a new version, a withdrawn visit, a new visit) traces exactly as the server's reader."""
    from qrtrace.queries.trace_index import IndexHopReader
    from qrtrace.sinks.trace_index_files import build, catch_up, store_id_of

    server, _ = wave
    pseudonym = Pseudonymiser(PSEUDONYM_KEY)
    query = CaseQuery("small-wave", pseudonym.one(CASE_ID), _us(FROM), _us(TO))
    rules = TraceRules(depth=3, grace_us=30 * M, min_overlap_us=0, until_us=_us(UNTIL))
    followed = build(server, store_id_of(server))
    assert len(followed.index) > 0
    reader = IndexHopReader(followed.index, 86_400_000_000)
    assert shape(trace_case(reader, query, rules)) == shape(trace_case(StoreHopReader(server), query, rules))
    first = trace_case(StoreHopReader(server), query, rules).contacts[0]
    exposure = first.exposures[0]
    stored = server.query(
        "SELECT venue_id, person, start_us, end_us, opened_by, version FROM qrtrace.visits_by_venue FINAL"
        " WHERE person = {p:String} AND venue_id = {v:String} AND withdrawn = 0 ORDER BY start_us LIMIT 1",
        {"p": first.person, "v": exposure.venue},
    )
    venue, person, start, end, opened_by, version = (stored[k][0] for k in stored)
    server.insert("qrtrace.visits_by_venue", {  # the contact's visit withdrawn, a stranger's new one
        "venue_id": [venue, venue], "person": [person, "stranger"], "start_us": np.array([start, start]),
        "end_us": np.array([end, end]), "closed_by": np.zeros(2, np.int8),
        "version": np.array([version + 1, 1], np.uint64), "opened_by": [opened_by, "new-scan"],
        "withdrawn": np.array([1, 0], np.uint8),
    })  # fmt: skip
    try:
        caught_up = IndexHopReader(catch_up(server, followed).index, 86_400_000_000)
        want = shape(trace_case(StoreHopReader(server), query, rules))
        assert shape(trace_case(caught_up, query, rules)) == want
        assert shape(trace_case(reader, query, rules)) != want  # the stale snapshot differs: the test can fail
    finally:
        server.insert("qrtrace.visits_by_venue", {  # put the wave back for the tests after this one
            "venue_id": [venue, venue], "person": [person, "stranger"], "start_us": np.array([start, start]),
            "end_us": np.array([end, end]), "closed_by": np.zeros(2, np.int8),
            "version": np.array([version + 2, 2], np.uint64), "opened_by": [opened_by, "new-scan"],
            "withdrawn": np.array([0, 1], np.uint8),
        })  # fmt: skip


def test_trace_through_the_server_equals_the_trace_through_chdb(wave) -> None:  # type: ignore[no-untyped-def]
    server, embedded = wave
    pseudonym = Pseudonymiser(PSEUDONYM_KEY)
    query = CaseQuery("small-wave", pseudonym.one(CASE_ID), _us(FROM), _us(TO))
    rules = TraceRules(depth=2, grace_us=30 * M, min_overlap_us=0, until_us=_us(UNTIL))
    on_server = trace_case(StoreHopReader(server), query, rules)
    assert shape(on_server) == shape(trace_case(StoreHopReader(embedded), query, rules))

    import json

    expected = json.loads((SMALL_WAVE / "expected.json").read_text())["contacts"]
    want = {
        pseudonym.one(c["person_id"]): (c["hop"], _us(datetime.fromisoformat(c["first_exposure"]))) for c in expected
    }
    assert {c.person: (c.hop, c.first_exposure) for c in on_server.contacts} == want


def test_candidates_split_by_day_give_the_same_trace_on_both(wave, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Large batches read their cells as one SELECT per day joined with UNION ALL: same result, both engines."""
    from qrtrace.queries import visit_reader

    server, embedded = wave
    pseudonym = Pseudonymiser(PSEUDONYM_KEY)
    query = CaseQuery("small-wave", pseudonym.one(CASE_ID), _us(FROM), _us(TO))
    rules = TraceRules(depth=2, grace_us=30 * M, min_overlap_us=0, until_us=_us(UNTIL))
    single_select = shape(trace_case(StoreHopReader(embedded), query, rules))
    monkeypatch.setattr(visit_reader, "SPLIT_BY_DAY_CELLS", 0)
    for store in (server, embedded):
        reader = StoreHopReader(store)
        assert shape(trace_case(reader, query, rules)) == single_select
    assert single_select  # the small wave's case has contacts: the comparison is not vacuous


def test_coverage_report_is_identical_on_both(wave) -> None:  # type: ignore[no-untyped-def]
    server, embedded = wave
    for since, as_of in ((_us(TO) - 2 * US_PER_DAY, _us(TO)), (_us(FROM) + 8 * 3600 * 10**6, _us(TO))):
        on_server = coverage_report(server, as_of, since).to_dict()
        assert on_server == coverage_report(embedded, as_of, since).to_dict()
    assert any(c["scans"] for c in on_server["cells"])


def _census_on(store: Store) -> dict[str, object]:
    """The deployment census on one store: written twice (a re-import), then a later version of one row."""
    from qrtrace.domain.census import Establishment
    from qrtrace.queries.census import stored_census, write_census

    store.execute("TRUNCATE TABLE qrtrace.census")
    venues = store.query("SELECT venue_id, category, commune_code FROM qrtrace.venues FINAL ORDER BY venue_id")
    first = (venues["venue_id"][0], venues["category"][0], venues["commune_code"][0])
    rows = [Establishment("CS1", "Linked", first[1], first[2], "Tổ 1", first[0]),
            Establishment("CS2", "Not registered", "karaoke", first[2], "Tổ 2"),
            Establishment("CS3", "Gone venue", "bar", first[2], "Tổ 3", "no-such-venue"),
            Establishment("CS1", "Other commune's CS1", "market", "02539", "Thôn 1")]  # fmt: skip
    write_census(store, rows, 100, "test")
    write_census(store, rows, 100, "test")  # the same file again
    write_census(store, [Establishment("CS2", "Renamed", "karaoke", first[2], "Tổ 2b")], 200, "test")
    report = coverage_report(store, _us(TO), _us(TO) - 2 * US_PER_DAY).to_dict()
    return {"census": stored_census(store), "report": report}


def test_census_coverage_is_identical_on_both(wave) -> None:  # type: ignore[no-untyped-def]
    server, embedded = wave
    on_server, on_embedded = _census_on(server), _census_on(embedded)
    assert on_server == on_embedded
    assert len(on_server["census"]) == 4 and on_server["census"][1].name == "Renamed"  # by (commune, id)
    report = on_server["report"]
    assert [e["establishment_id"] for e in report["unregistered"]] == ["CS3", "CS2", "CS1"]
    linked = [c for c in report["communes"] if c["required_registered"]]
    assert len(linked) == 1 and linked[0]["census"] and linked[0]["required"] == 3


def _contacts_on(store: Store) -> dict[str, object]:
    """Issue 10 item 4 on one store: contacts only added, the latest called, history kept, legacy migrated."""
    vault, audit = Vault(VAULT_KEY), AuditLog(store, "test")
    sealed = {n: vault.seal(n, CONTACT_CONTEXT) for n in ("0912000001", "0913000003", "0914000004")}
    writer = StoreWriter(store)
    store.execute("TRUNCATE TABLE qrtrace.contact_details")
    # A store of an earlier version: the phone in identity_vault, then a check-in's empty row over it.
    for contact, at in ((sealed["0914000004"], 5), ("", 6)):
        store.insert("qrtrace.identity_vault", {"person": ["ct-legacy"], "identifier_sealed": [vault.seal(
            "QR-LEGACY", IDENTITY_CONTEXT)], "contact_sealed": [contact], "sealed_at_us": [at]})  # fmt: skip
    migrate_contacts(store)
    migrate_contacts(store)  # done once: the table is no longer empty
    ident = vault.seal("008221072523", IDENTITY_CONTEXT)
    writer.identities(["ct-person"], [ident], [""], 10)
    writer.contacts(["ct-person"], [sealed["0912000001"]], 10, "directory")
    writer.identities(["ct-person"], [ident], [""], 20)  # a later check-in with the citizen id
    # An identities message of an earlier producer, which still carried the contact.
    writer.identities(["ct-old-producer"], [vault.seal("0915000005", IDENTITY_CONTEXT)],
                      [vault.seal("0915000005", CONTACT_CONTEXT)], 25)  # fmt: skip
    writer.contacts(["ct-person"], [sealed["0913000003"]], 30, "directory")
    writer.contacts(["ct-person"], [sealed["0913000003"]], 30, "directory")  # a retried insert
    store.execute("OPTIMIZE TABLE qrtrace.identity_vault FINAL")
    persons = ["ct-person", "ct-legacy", "ct-old-producer", "ct-unknown"]
    found = reidentify(store, vault, audit, persons, "ct", "test")
    history = contact_history(store, vault, audit, persons, "ct", "test")
    vault_contacts = store.query("SELECT DISTINCT contact_sealed FROM qrtrace.identity_vault "
                                 "WHERE person LIKE 'ct-%'")["contact_sealed"]  # fmt: skip
    return {
        "found": {p: (i.identifier, i.contact) for p, i in found.items()},
        "history": {p: [(e.contact, e.seen_at_us, e.source) for e in t] for p, t in history.items()},
        "vault_contacts": vault_contacts,
    }


def test_contacts_are_only_added_and_earlier_stores_keep_theirs_on_both(server: ClickHouseStore,
                                                                        embedded: ChdbStore) -> None:  # fmt: skip
    on_server = _contacts_on(server)
    assert on_server == _contacts_on(embedded)
    assert on_server["found"] == {
        "ct-person": ("008221072523", "0913000003"),
        "ct-legacy": ("QR-LEGACY", "0914000004"),
        "ct-old-producer": ("0915000005", "0915000005"),
        "ct-unknown": ("?ct-unknown", ""),
    }
    assert on_server["history"] == {
        "ct-person": [("0912000001", 10, "directory"), ("0913000003", 30, "directory")],
        "ct-legacy": [("0914000004", 5, "identity_vault")],
        "ct-old-producer": [("0915000005", 25, "checkin")],
    }
    assert on_server["vault_contacts"] == [""]  # identity_vault no longer holds a contact that can be replaced


def test_retention_drops_old_day_partitions(server: ClickHouseStore) -> None:
    old_day, kept_day = 1000, 1001  # far before the small wave, whose partitions must survive
    for day, person in ((old_day, "p-old"), (kept_day, "p-kept")):
        start = day * US_PER_DAY + 60 * M
        server.insert("qrtrace.visits_by_venue", _visit("V-RET", person, start, start + M, 1, 1, f"ret-{day}"))
    others = "SELECT count() AS n FROM qrtrace.visits_by_person WHERE venue_id != 'V-RET'"
    before = server.query(others)["n"]
    try:
        dropped = drop_expired_partitions(server, cutoff_day=kept_day)
        assert sorted(dropped) == [("visits_by_person", old_day), ("visits_by_venue", old_day)]
        left = server.query("SELECT person FROM qrtrace.visits_by_person WHERE venue_id = 'V-RET' ORDER BY person")
        assert left["person"] == ["p-kept"]
        assert server.query(others)["n"] == before
        parts = server.query(load_sql("qrtrace.sinks", "day_partitions"), {"tables": list(DAY_PARTITIONED)})
        assert str(old_day) not in parts["partition"] and str(kept_day) in parts["partition"]
    finally:
        _drop_days(server, kept_day)


def _repair_on(store: Store) -> dict[str, object]:
    """Issue 10 item 1 on one store: rows from before event times and visits were bounded, repaired."""
    year = 365 * US_PER_DAY
    far = _us(UNTIL) + 3000 * year  # year ~5021: a day partition of its own
    later_today = _us(UNTIL) + 3_600_000_000  # an hour after the limit, in the limit's own day
    for scan, t in (("rp-far", far), ("rp-today", later_today)):
        store.insert("qrtrace.checkins", {
            "scan_id": [scan], "venue_id": ["VN4675010"], "person": ["rp-person"], "direction": [1],
            "event_time_us": [t], "offset_minutes": [420], "mode": ["venue_qr"], "scanner_id": ["S"],
            "declaration_sealed": [""], "outcome": ["opened"], "ingested_at_us": [INGESTED_AT]})  # fmt: skip
    visits = [("rp-far", far, far + 150 * M), ("rp-today", later_today, later_today + 150 * M),
              ("rp-long", _us(FROM) - 6 * US_PER_DAY, _us(FROM) - US_PER_DAY),  # a five-day karaoke visit
              ("rp-closed-later", _us(UNTIL) - 60 * M, _us(UNTIL) + 60 * M)]  # closed by a check-out from the future
    for opened_by, start, end in visits:
        store.insert("qrtrace.visits_by_venue", {
            "venue_id": ["VN4675010"], "person": ["rp-person"], "start_us": [start], "end_us": [end],
            "closed_by": [1], "version": [1], "opened_by": [opened_by]})  # fmt: skip
    cats = load_categories().values()
    dwell = {c.code: c.default_dwell_minutes * M for c in cats}
    caps = {c.code: max(3 * d, 240 * M) for c, d in zip(cats, dwell.values(), strict=True)}
    first = repair_store(store, _us(UNTIL), dwell, caps, INGESTED_AT)
    second = repair_store(store, _us(UNTIL), dwell, caps, INGESTED_AT)
    mine = "SELECT opened_by, start_us, end_us, version FROM qrtrace.visits_by_venue FINAL WHERE person = 'rp-person'"
    return {
        "first": (first.future_checkins, first.visits_reopened, first.visits_shortened,
                  sorted(first.future_rows_deleted)),
        "second": (second.future_checkins, second.visits_reopened, second.visits_shortened,
                   second.future_rows_deleted),
        "future_checkins_left": rows(store.query("SELECT scan_id FROM qrtrace.checkins WHERE event_time_us > "
                                                 f"{_us(UNTIL)}")),
        "visits": rows(store.query(mine)),
        "letters": rows(store.query("SELECT reason, count() FROM qrtrace.dead_letters FINAL WHERE source = 'repair' "
                                    "GROUP BY reason")),
        "longest": rows(store.query("SELECT maxMerge(longest) FROM qrtrace.visit_spans")),
    }  # fmt: skip


def test_repair_gives_the_same_store_on_both(wave) -> None:  # type: ignore[no-untyped-def]
    """`qrtrace repair`'s SQL on ClickHouse 18.16 and chDB: partitions dropped, a mutation waited for,
    a long visit replaced by a higher version, the longest-visit table rebuilt; a second run does nothing."""
    server, embedded = wave
    on_server, on_chdb = _repair_on(server), _repair_on(embedded)
    assert on_server == on_chdb
    assert on_server["first"] == (2, 1, 1, ["checkins", "visits_by_person", "visits_by_venue"])
    assert on_server["second"] == (0, 0, 0, {})
    assert on_server["future_checkins_left"] == []
    assert on_server["visits"] == [("rp-closed-later", _us(UNTIL) - 60 * M, _us(UNTIL) + 90 * M, 2),
                                   ("rp-long", _us(FROM) - 6 * US_PER_DAY, _us(FROM) - 6 * US_PER_DAY + 150 * M, 2)]
    assert on_server["letters"] == [("event_time_in_future", 2), ("visit_over_cap", 1)]
    assert on_server["longest"][0][0] < US_PER_DAY


def test_trace_exposure_rows_store_and_read_back_alike(wave) -> None:  # type: ignore[no-untyped-def]
    """The rows a batch trace stores per chunk (trace_exposures) go in and come back the same on 18.16 as on
    chDB, a case at a time in the order of the result documents, and a failed run's rows are dropped."""
    from qrtrace.queries.trace import exposure_rows, trace_batch

    server, embedded = wave
    pseudonym = Pseudonymiser(PSEUDONYM_KEY)
    others = ["07597917319", "02315975045"]
    cases = [CaseQuery(f"c{i}", pseudonym.one(p), _us(FROM), _us(TO)) for i, p in enumerate([CASE_ID, *others])]
    rules = TraceRules(depth=2, grace_us=30 * M, until_us=_us(UNTIL))
    batch = trace_batch(StoreHopReader(embedded), cases, rules)
    stored = exposure_rows(batch, 0)
    n = len(stored["person"])
    assert n and set(stored["case_index"].tolist()) <= {0, 1, 2}
    columns = {"trace_id": np.full(n, "tr-both", dtype=object), "started_at_us": np.full(n, _us(FROM)), **stored}
    read = load_sql("qrtrace.queries", "trace_exposures_read")
    for store in (server, embedded):
        store.insert("qrtrace.trace_exposures", columns)
    for case in range(3):
        params = {"trace_id": "tr-both", "first_case": case, "end_case": case + 1}
        got = list(zip(*server.query(read, params).values(), strict=True))  # in the SQL's order, not sorted here
        want = list(zip(*embedded.query(read, params).values(), strict=True))
        assert got == want and len(got) == int((stored["case_index"] == case).sum())
    people = load_sql("qrtrace.queries", "trace_exposures_people")
    assert sorted(rows(server.query(people, {"trace_id": "tr-both"}))) == sorted(
        rows(embedded.query(people, {"trace_id": "tr-both"})))
    server.execute(load_sql("qrtrace.queries", "trace_exposures_drop"), {"trace_id": "tr-both"})
    for _ in range(100):  # a mutation: applied in the background on 18.16
        if not server.query("SELECT count() AS n FROM qrtrace.trace_exposures WHERE trace_id = 'tr-both'")["n"][0]:
            break
        import time

        time.sleep(0.1)
    assert not server.query("SELECT count() AS n FROM qrtrace.trace_exposures WHERE trace_id = 'tr-both'")["n"][0]


def test_the_audit_chain_on_the_server_and_on_an_audit_log_from_before_it(clickhouse_installed: None,
                                                                          tmp_path: Path) -> None:  # fmt: skip
    """Issue 10 item 11 on 18.16: a store whose audit_log predates the chain opens (its columns are added),
    entries chain on, and verification finds an entry written twice."""
    from clickhouse_driver import Client

    from qrtrace.sinks.audit import AuditLog, verify_store

    state = tmp_path / "old-audit"
    url = _start(state)
    try:
        raw = Client("127.0.0.1", port=int((state / "native_port").read_text()))
        raw.execute("CREATE DATABASE qrtrace")
        raw.execute("CREATE TABLE qrtrace.schema_meta (version UInt32, created_at_us Int64) ENGINE = TinyLog")
        raw.execute("INSERT INTO qrtrace.schema_meta (version, created_at_us) VALUES", [(SCHEMA_VERSION, 1)])
        raw.execute("CREATE TABLE qrtrace.audit_log (at_us Int64, actor String, action String, case_id String, "
                    "subject String, purpose String, detail String) ENGINE = MergeTree "
                    "PARTITION BY intDiv(at_us, 86400000000) ORDER BY at_us")  # the layout before the chain
        raw.execute("INSERT INTO qrtrace.audit_log (at_us, actor, action, case_id, subject, purpose, detail) VALUES",
                    [(INGESTED_AT, "old", "trace", "C", "p", "why", "{}")])  # fmt: skip
        store = ClickHouseStore(url)
        for i in range(4):
            AuditLog(store, "server").record("trace", f"C{i}", "p", "why", contacts=i)
        ClickHouseStore(url).close()  # opening again adds nothing twice
        check = verify_store(store)
        assert (check.broken, check.entries, check.head_seq, check.unchained) == (None, 4, 4, 1)
        raw.execute("INSERT INTO qrtrace.audit_log SELECT * FROM qrtrace.audit_log WHERE seq = 2")
        broken = verify_store(store).broken
        assert broken is not None and (broken.seq, broken.kind) == (2, "duplicate")
        store.close()
    finally:
        _stop(state)


def test_a_v4_store_migrates_to_v5_on_the_server(clickhouse_installed: None, tmp_path: Path) -> None:
    """Issue 14 on 18.16: a store of layout v4 opens as v5, its zone columns added (ADD COLUMN after a look at
    system.columns: 18.16 has no IF NOT EXISTS) and the views copying zone; opening it again changes nothing."""
    from clickhouse_driver import Client

    from tests.embedded.test_layout_migration import V4_STATEMENTS

    state = tmp_path / "v4"
    url = _start(state)
    try:
        raw = Client("127.0.0.1", port=int((state / "native_port").read_text()))
        for statement in V4_STATEMENTS:
            raw.execute(statement)
        store = ClickHouseStore(url)
        assert store.query("SELECT max(version) AS v FROM qrtrace.schema_meta")["v"] == [SCHEMA_VERSION] == [5]
        zone_columns = store.query("SELECT table, name FROM system.columns WHERE database = 'qrtrace' AND name IN "
                                   "('zone', 'zones') AND table NOT LIKE '%_mv' ORDER BY table")  # fmt: skip
        assert zone_columns["table"] == ["checkins", "venues", "visit_feed", "visits_by_person", "visits_by_venue"]
        assert store.query("SELECT zone FROM qrtrace.visits_by_person")["zone"] == [""]
        store.insert("qrtrace.visits_by_venue", {"venue_id": ["V1"], "person": ["p2"],
                     "start_us": [1626739300000000], "end_us": [1626739400000000], "closed_by": [1], "version": [1],
                     "opened_by": ["s-z"], "withdrawn": [0], "zone": ["Khu A"]})  # fmt: skip
        assert store.query("SELECT person, zone FROM qrtrace.visits_by_person FINAL ORDER BY person") == {
            "person": ["p1", "p2"], "zone": ["", "Khu A"]}  # fmt: skip
        assert store.query("SELECT zone FROM qrtrace.visit_feed WHERE person = 'p2'")["zone"] == ["Khu A"]
        store.close()
        with ClickHouseStore(url) as again:
            assert again.query("SELECT count() AS n FROM qrtrace.visits_by_person")["n"] == [2]
            assert again.query("SELECT count() AS n FROM qrtrace.schema_meta WHERE version = 5")["n"] == [1]
    finally:
        _stop(state)


def test_hotspots_of_the_hand_computed_fixture_on_the_server(wave) -> None:  # type: ignore[no-untyped-def]
    """The small wave's hotspots are the same on both; the fixture computed by hand
    (tests/fixtures/hotspots/README.md) through the real edge and processor into the server gives its answer."""
    import json

    from qrtrace.queries.hotspots import hotspot_report

    server, embedded = wave
    offset = 7 * 3600 * 10**6
    for days in (1, 7):
        on_server = hotspot_report(server, _us(TO) + US_PER_DAY, days, window_minutes=15, offset_us=offset)
        assert on_server == hotspot_report(embedded, _us(TO) + US_PER_DAY, days, window_minutes=15, offset_us=offset)
    assert on_server.venues and on_server.categories
    fixture = REPO / "tests" / "fixtures" / "hotspots"
    expected = json.loads((fixture / "expected.json").read_text(encoding="utf-8"))
    try:
        ingest_small_wave(server, fixture)  # venues HS1-HS3 beside the small wave's
        as_of = _us(datetime.fromisoformat(expected["as_of"]))
        report = hotspot_report(server, as_of, 7, window_minutes=15, offset_us=offset, visible={"02536", "02539",
                                                                                                  "02542"})
        got = [(v.venue_id, v.windows, v.over_capacity_windows, v.peak_present, v.peak_ratio, v.arrivals)
               for v in report.venues if v.venue_id.startswith("HS")]
        want = [(v["venue_id"], v["windows"], v["over_capacity_windows"], v["peak_present"], v["peak_ratio"],
                 v["arrivals"]) for v in expected["venues"]]
        assert got == want
        peaks = {v.venue_id: v.peak_window_us for v in report.venues}
        assert [peaks[v["venue_id"]] for v in expected["venues"]] == [
            _us(datetime.fromisoformat(v["peak_at"])) for v in expected["venues"]]
        one = hotspot_report(server, as_of, 7, window_minutes=15, offset_us=offset, visible={"02542"})
        (karaoke,) = one.categories
        assert (karaoke.mean_present[21], karaoke.arrivals[21], karaoke.busiest_hour) == (0.1786, 4, 21)
    finally:  # the server is the session's: leave it holding the small wave alone, as the fixture made it
        for table in (*DAY_PARTITIONED, "venues", "identity_vault", "contact_details"):
            server.execute(f"TRUNCATE TABLE qrtrace.{table}")
        ingest_small_wave(server)
def test_follow_up_records_and_their_history_on_both(wave) -> None:  # type: ignore[no-untyped-def]
    from qrtrace.queries.follow_up import FollowUp, Update, follow_up_id
    from qrtrace.sinks import follow_up as fu

    for store in wave:
        fid = follow_up_id("FU-CASE", "p-server")
        record = FollowUp(fid, "FU-CASE", "p-server", 1, "close", "V-X", "100", 1_626_800_000_000_000,
                          1_626_800_600_000_000, "tr-x", created_at_us=1)  # fmt: skip
        fu.write(store, [record, record])  # written twice: one record
        audit = AuditLog(store, "station-test")
        fu.update(store, audit, fid, Update("reached", note="gọi được"))
        fu.update(store, audit, fid, Update("quarantined", 1_626_900_000_000_000))
        fu.write(store, [record])  # a creation written again never overrides a change (version 0)
        got = fu.one(store, fid)
        assert (got.status, got.quarantine_from_us, got.notes) == ("quarantined", 1_626_900_000_000_000, "gọi được")
        assert [r.follow_up_id for r in fu.listing(store, frozenset({"100"}), "quarantined")] == [fid]
        assert fu.listing(store, frozenset({"200"})) == []
        fields = [(h["field"], h["to"]) for h in fu.history(store, fid)]
        assert {("status", "reached"), ("status", "quarantined"), ("notes", "gọi được")} <= set(fields)
