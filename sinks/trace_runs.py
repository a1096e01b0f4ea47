"""Writes of trace runs: each chunk's exposures as rows of `trace_exposures`, then the run's row in
`trace_runs` (written last: a run without it is unfinished and never read); a failed run's rows dropped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import orjson

from qrtrace.sinks.clickhouse_sql import load_sql
from qrtrace.sinks.store import Store

if TYPE_CHECKING:
    from qrtrace.queries.trace import Table, TraceRules


def write_exposures(store: Store, trace_id: str, started_at_us: int, rows: Table) -> None:
    """One chunk's exposure rows (`queries.trace.exposure_rows`) under the run's id and start."""
    n = len(rows["person"])
    store.insert("qrtrace.trace_exposures", {
        "trace_id": np.full(n, trace_id, dtype=object),
        "started_at_us": np.full(n, started_at_us, dtype=np.int64), **rows})  # fmt: skip


def write_run(store: Store, trace_id: str, started_at_us: int, finished_at_us: int, actor: str,
              case_ids: Sequence[str], purpose: str, rules: TraceRules,
              headers: Sequence[Mapping[str, object]]) -> None:  # fmt: skip
    """The run's row: who ran it for which cases and why, its rules, and per case the document header."""
    store.insert("qrtrace.trace_runs", {
        "trace_id": [trace_id], "started_at_us": [started_at_us], "finished_at_us": [finished_at_us],
        "actor": [actor], "case_ids": [",".join(case_ids)], "purpose": [purpose],
        "rules": [orjson.dumps({"depth": rules.depth, "grace_us": rules.grace_us,
                                "min_overlap_us": rules.min_overlap_us, "until_us": rules.until_us,
                                "sources": rules.sources,
                                "rule": rules.risk.label if rules.risk is not None else None}).decode()],
        "result": [orjson.dumps(list(headers)).decode()],
    })  # fmt: skip


def drop_exposures(store: Store, trace_id: str) -> None:
    """Drop the exposure rows of a run that failed before its `trace_runs` row was written."""
    store.execute(load_sql("qrtrace.queries", "trace_exposures_drop"), {"trace_id": trace_id})
