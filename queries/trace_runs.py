"""Stored trace runs: a run's row in `trace_runs` (per-case headers) and its exposures in `trace_exposures`.

The rows are pseudonymous; re-identifying the people they name is `queries/reidentify.py`'s (audited)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qrtrace.sinks.clickhouse_sql import load_sql
from qrtrace.sinks.store import Store


@dataclass(frozen=True)
class RunSummary:
    """A finished run without its result: `case_ids` comma-separated, `rules` JSON text, as stored."""

    trace_id: str
    started_at_us: int
    finished_at_us: int
    actor: str
    case_ids: str
    purpose: str
    rules: str


@dataclass(frozen=True)
class StoredRun(RunSummary):
    """A finished run with its `result` (JSON text: per-case headers, or whole documents from older versions)."""

    result: str


def stored_run(store: Store, trace_id: str) -> StoredRun | None:
    """The finished run `trace_id`, None if there is none (still running, failed, or unknown)."""
    rows = store.query(load_sql("qrtrace.queries", "trace_run"), {"trace_id": trace_id})
    if not rows["trace_id"]:
        return None
    return StoredRun(rows["trace_id"][0], rows["started_at_us"][0], rows["finished_at_us"][0], rows["actor"][0],
                     rows["case_ids"][0], rows["purpose"][0], rows["rules"][0], rows["result"][0])  # fmt: skip


def recent_runs(store: Store, limit: int) -> list[RunSummary]:
    """The `limit` most recently started finished runs, newest first."""
    rows = store.query(load_sql("qrtrace.queries", "trace_runs_list"), {"limit": limit})
    return [
        RunSummary(*row)
        for row in zip(rows["trace_id"], rows["started_at_us"], rows["finished_at_us"], rows["actor"],
                       rows["case_ids"], rows["purpose"], rows["rules"], strict=True)
    ]  # fmt: skip


def case_exposures(store: Store, trace_id: str, case: int) -> dict[str, np.ndarray]:
    """The stored exposures of the run's case number `case` as numpy columns, in the result documents' order
    (by hop, first exposure and person; each contact's exposures by start, venue, source)."""
    sql = load_sql("qrtrace.queries", "trace_exposures_read")
    return store.query_columns(sql, {"trace_id": trace_id, "first_case": case, "end_case": case + 1})


def exposure_people(store: Store, trace_id: str) -> set[str]:
    """Every pseudonym the run's exposures name, as a contact or as a source (the cases are in its headers)."""
    rows = store.query(load_sql("qrtrace.queries", "trace_exposures_people"), {"trace_id": trace_id})
    return set(rows["person"])
