"""The embedded store: chDB (ClickHouse in-process) on a local directory. Same SQL as the server."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa

from qrtrace.errors import StoreError
from qrtrace.sinks.clickhouse_sql import load_sql, render, split_statements
from qrtrace.sinks.store import MAX_QUERY_BYTES, Columns, bootstrap_schema


class ChdbStore:
    """Owns one store directory (a file lock keeps a second process out, as chDB requires)."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = _lock_directory(path)
        from chdb import session  # imported here: ~0.5 s, only paid by commands that open a store

        self._session = session.Session(str(path / "chdb"))
        self._run(f"SET max_query_size = {MAX_QUERY_BYTES}")
        bootstrap_schema(self)
        for statement in split_statements(load_sql("qrtrace.sinks", "chdb_tuning")):
            self._run(statement)

    def _run(self, sql: str, fmt: str = "CSV") -> object:
        try:
            return self._session.query(sql, fmt)
        except Exception as exc:  # chDB raises its own error type; callers get ours, with the cause
            raise StoreError(f"The embedded store refused a statement: {str(exc).splitlines()[0]}") from exc

    def execute(self, sql: str, params: Mapping[str, object] | None = None) -> None:
        self._run(render(sql, params or {}))

    def query(self, sql: str, params: Mapping[str, object] | None = None) -> dict[str, list]:
        table = self._run(render(sql, params or {}), "ArrowTable")
        return table.to_pydict()  # type: ignore[attr-defined]

    def query_columns(self, sql: str, params: Mapping[str, object] | None = None) -> dict[str, np.ndarray]:
        table = self._run(render(sql, params or {}), "ArrowTable")
        return {
            name: column.to_numpy(zero_copy_only=False)  # strings become an object array
            for name, column in zip(table.column_names, table.columns, strict=True)  # type: ignore[attr-defined]
        }

    def query_arrow(self, sql: str, params: Mapping[str, object] | None = None) -> pa.Table:
        """The result as an Arrow table (no Python objects per value): for bulk reads."""
        return self._run(render(sql, params or {}), "ArrowTable")  # type: ignore[return-value]

    def insert(self, table: str, columns: Columns) -> None:
        """Columnar insert: one statement for the whole batch."""
        batch = pa.table({name: _arrow_column(values) for name, values in columns.items()})
        if not batch.num_rows:
            return
        names = ", ".join(columns)
        # chDB's Python() table function resolves the name in this frame's locals.
        qrtrace_batch = batch  # noqa: F841
        self._run(f"INSERT INTO {table} ({names}) SELECT {names} FROM Python(qrtrace_batch)")

    def insert_select(self, sql: str, batch: pa.Table, params: Mapping[str, object] | None = None) -> None:
        """Run an INSERT ... SELECT that reads `batch` as `Python(qrtrace_batch)` (bulk loaders)."""
        qrtrace_batch = batch  # noqa: F841 - chDB resolves the name in this frame's locals
        self._run(render(sql, params or {}))

    def close(self) -> None:
        self._session.close()
        self._lock.close()


def _arrow_column(values: object) -> pa.Array:
    """Strings (object arrays, lists of str) become Arrow strings; numeric arrays keep their type."""
    if isinstance(values, np.ndarray) and values.dtype != object:
        return pa.array(values)
    array = pa.array(values)
    return array if not pa.types.is_null(array.type) else pa.array(values, pa.string())


def _lock_directory(path: Path) -> IO[str]:
    fh = open(path / ".lock", "w")  # noqa: SIM115 - held open for the store's lifetime
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise StoreError(
            f"The store {path} is in use by another qrtrace process; stop it or use another --store."
        ) from None
    fh.write(str(os.getpid()))
    fh.flush()
    return fh
