"""Writes that survive a database outage: retry the same batch with back-off until it lands.

Retrying is safe because every table's key makes a repeated insert a no-op, and the caller keeps
the batch (and its Kafka offsets uncommitted) until this returns: nothing is dropped, nothing doubled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from qrtrace.errors import StoreError
from qrtrace.sinks.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")


class RetryingStore:
    """Opens the store lazily and reopens it after a failure; `run` retries until the write lands."""

    def __init__(
        self,
        open_store: Callable[[], Store],
        max_backoff_s: float = 10.0,
        on_retry: Callable[[Exception, float], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._open = open_store
        self._store: Store | None = None
        self._max_backoff = max_backoff_s
        self._on_retry = on_retry
        self._sleep = sleep
        self.retries = 0
        self.should_stop: Callable[[], bool] = lambda: False  # a stopping worker gives up instead of retrying

    def run(self, write: Callable[[Store], T], give_up_after_s: float | None = None) -> T:
        """Call `write(store)` until it succeeds (or `give_up_after_s` passes, then re-raise)."""
        delay, started = 0.2, time.monotonic()
        while True:
            try:
                if self._store is None:
                    self._store = self._open()
                return write(self._store)
            except (StoreError, OSError, EOFError) as exc:
                self._drop_connection()
                if self.should_stop() or (give_up_after_s is not None and time.monotonic() - started > give_up_after_s):
                    raise
                self.retries += 1
                log.warning("store unavailable (%s); retrying the same batch in %.1f s", exc, delay)
                if self._on_retry:
                    self._on_retry(exc, delay)
                self._sleep(delay)
                delay = min(delay * 2, self._max_backoff)

    def _drop_connection(self) -> None:
        if self._store is not None:
            try:
                self._store.close()
            except Exception:  # closing a broken connection may fail too; we reopen anyway
                log.debug("closing a failed store connection raised", exc_info=True)
            self._store = None

    def close(self) -> None:
        self._drop_connection()
