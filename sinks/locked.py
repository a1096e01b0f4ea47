"""A store shared by threads of one process: each statement takes the owner's lock."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from qrtrace.sinks.store import Columns, Store


class LockedStore:
    """The store with the service's lock taken per statement, so a long trace lets other requests in
    between its statements instead of holding the store for minutes."""

    def __init__(self, store: Store, lock: threading.RLock) -> None:
        self._store, self._lock = store, lock

    def execute(self, sql: str, params: Mapping[str, object] | None = None) -> None:
        """One statement under the lock."""
        with self._lock:
            self._store.execute(sql, params)

    def query(self, sql: str, params: Mapping[str, object] | None = None) -> dict[str, list]:
        """One query under the lock."""
        with self._lock:
            return self._store.query(sql, params)

    def query_columns(self, sql: str, params: Mapping[str, object] | None = None) -> dict:
        """One query under the lock, as numpy columns."""
        with self._lock:
            return self._store.query_columns(sql, params)

    def query_arrow(self, sql: str, params: Mapping[str, object] | None = None) -> object:
        """One query under the lock, as an Arrow table."""
        with self._lock:
            return self._store.query_arrow(sql, params)

    def insert(self, table: str, columns: Columns) -> None:
        """One insert under the lock."""
        with self._lock:
            self._store.insert(table, columns)

    def close(self) -> None:
        """The runtime closes the real store."""
