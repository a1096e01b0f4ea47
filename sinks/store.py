"""The store interface every sink and query uses; chDB (embedded) and the ClickHouse server implement it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

Columns = Mapping[str, Sequence[object] | np.ndarray]


class Store(Protocol):
    """A ClickHouse-dialect store. SQL text comes from .sql files; values travel in `params`."""

    def execute(self, sql: str, params: Mapping[str, object] | None = None) -> None: ...

    def query(self, sql: str, params: Mapping[str, object] | None = None) -> dict[str, list]: ...

    def insert(self, table: str, columns: Columns) -> None: ...

    def close(self) -> None: ...
