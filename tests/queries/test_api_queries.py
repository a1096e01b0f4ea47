"""The typed query functions the API reads through: each runs its .sql file with its parameters and maps the
columns by name (a fake store, no engine); writes of trace runs go to the tables they name."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import orjson

from qrtrace.domain.admin_units import Commune
from qrtrace.queries.audit import AuditEntry, audit_entries
from qrtrace.queries.cases import DeclaredCase, declared_cases, recent_cases
from qrtrace.queries.dead_letters import DeadLetterReason, dead_letter_reasons
from qrtrace.queries.ingest_rates import IngestRate, events_per_minute, ingest_rates
from qrtrace.queries.reference import commune_rows, venue_ids
from qrtrace.queries.store_size import TableSize, table_sizes
from qrtrace.queries.trace import CaseQuery, TraceRules
from qrtrace.queries.trace_runs import RunSummary, StoredRun, exposure_people, recent_runs, stored_run
from qrtrace.sinks.clickhouse_sql import load_sql
from qrtrace.sinks.store import Columns
from qrtrace.sinks.trace_runs import drop_exposures, write_exposures, write_run


class FakeStore:
    """Answers every query with `answer` (columns in a shuffled order: mapping is by name) and records calls."""

    def __init__(self, answer: dict[str, list] | None = None) -> None:
        self.answer = dict(reversed(list((answer or {}).items())))
        self.calls: list[tuple[str, object]] = []

    def query(self, sql: str, params: Mapping[str, object] | None = None) -> dict[str, list]:
        self.calls.append((sql, params))
        return self.answer

    def execute(self, sql: str, params: Mapping[str, object] | None = None) -> None:
        self.calls.append((sql, params))

    def insert(self, table: str, columns: Columns) -> None:
        self.calls.append((table, dict(columns)))


def test_reference_rows() -> None:
    store = FakeStore({"commune_code": ["C1"], "name_vi": ["Xã A"], "unit_type": ["xã"], "district_code": ["D"],
                       "district_name_vi": ["Huyện"], "province_code": ["P"], "province_name_vi": ["Tỉnh"]})
    assert commune_rows(store) == [Commune("C1", "Xã A", "xã", "D", "Huyện", "P", "Tỉnh")]
    assert store.calls == [(load_sql("qrtrace.queries", "communes"), None)]
    assert venue_ids(FakeStore({"venue_id": ["V1", "V2"], "name": ["a", "b"]})) == ["V1", "V2"]


def test_cases() -> None:
    store = FakeStore({"case_id": ["F0-1"], "person": ["p"], "infectious_from_us": [1], "infectious_to_us": [2]})
    assert declared_cases(store, ("F0-1", "F0-2")) == {"F0-1": CaseQuery("F0-1", "p", 1, 2)}
    assert store.calls == [(load_sql("qrtrace.queries", "cases_by_id"), {"case_ids": ["F0-1", "F0-2"]})]
    store = FakeStore({"case_id": ["F0-1"], "person": ["p"], "infectious_from_us": [1], "infectious_to_us": [2],
                       "declared_at_us": [3], "declared_by": ["epi"]})
    assert recent_cases(store, 5) == [DeclaredCase("F0-1", "p", 1, 2, 3, "epi")]
    assert store.calls[0][1] == {"limit": 5}


def test_operations_rows() -> None:
    store = FakeStore({"reason": ["bad_time"], "dead_letters": [4], "last_at_us": [9]})
    assert dead_letter_reasons(store, 7) == [DeadLetterReason("bad_time", 4, 9)]
    assert store.calls[0][1] == {"since_us": 7}
    rates = ingest_rates(FakeStore({"minute": [1, 1, 2], "outcome": ["a", "b", "a"], "events": [3, 4, 5]}), 0)
    assert rates[1] == IngestRate(1, "b", 4)
    assert events_per_minute(rates) == {1: 7, 2: 5}
    sizes = table_sizes(FakeStore({"table": ["checkins"], "rows": [10], "bytes": [99]}))
    assert sizes == [TableSize("checkins", 10, 99)]


def test_audit_entries() -> None:
    store = FakeStore({"at_us": [1], "actor": ["a"], "action": ["trace"], "case_id": ["F0"], "subject": ["s"],
                       "purpose": ["why"], "detail": ['{"n":1}']})
    assert audit_entries(store, 0, "trace", "", 10) == [AuditEntry(1, "a", "trace", "F0", "s", "why", '{"n":1}')]
    assert store.calls[0][1] == {"since_us": 0, "action": "trace", "case_id": "", "limit": 10}


def test_trace_runs() -> None:
    row = {"trace_id": ["tr-1"], "started_at_us": [1], "finished_at_us": [2], "actor": ["epi"], "case_ids": ["a,b"],
           "purpose": ["why"], "rules": ["{}"]}
    assert recent_runs(FakeStore(row), 3) == [RunSummary("tr-1", 1, 2, "epi", "a,b", "why", "{}")]
    assert stored_run(FakeStore({**row, "result": ["[]"]}), "tr-1") == StoredRun("tr-1", 1, 2, "epi", "a,b", "why",
                                                                                "{}", "[]")  # fmt: skip
    assert stored_run(FakeStore({k: [] for k in [*row, "result"]}), "tr-2") is None
    assert exposure_people(FakeStore({"person": ["p", "q"]}), "tr-1") == {"p", "q"}


def test_trace_run_writes() -> None:
    store = FakeStore()
    write_exposures(store, "tr-1", 5, {"person": np.array(["p", "q"], dtype=object)})
    table, columns = store.calls[0]
    assert table == "qrtrace.trace_exposures" and list(columns["trace_id"]) == ["tr-1", "tr-1"]
    assert columns["started_at_us"].dtype == np.int64 and list(columns["started_at_us"]) == [5, 5]
    write_run(store, "tr-1", 5, 6, "epi", ["a", "b"], "why", TraceRules(2, 0, 0, 9), [{"case": "p"}])
    table, columns = store.calls[1]
    assert table == "qrtrace.trace_runs" and columns["case_ids"] == ["a,b"] and columns["finished_at_us"] == [6]
    assert orjson.loads(columns["rules"][0]) == {"depth": 2, "grace_us": 0, "min_overlap_us": 0, "until_us": 9,
                                                 "sources": "all", "rule": None}
    assert orjson.loads(columns["result"][0]) == [{"case": "p"}]
    drop_exposures(store, "tr-1")
    assert store.calls[2] == (load_sql("qrtrace.queries", "trace_exposures_drop"), {"trace_id": "tr-1"})
