"""The server store: a ClickHouse server over the native protocol (clickhouse-driver). Same SQL as chDB.

The URL is `clickhouse://[user[:password]@]host[:port][/db]`; the database in the URL is informational,
since every statement names its tables as `qrtrace.<table>`. Values are rendered as literals by
`clickhouse_sql.render` (the Debian server, 18.16, has no server-side query parameters). No retries here:
a failed call raises StoreError at once; back-off belongs to the sink that calls the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import unquote, urlsplit

import numpy as np
import pyarrow as pa

from qrtrace.errors import InputError, StoreError
from qrtrace.sinks.clickhouse_sql import render
from qrtrace.sinks.store import MAX_QUERY_BYTES, Columns, bootstrap_schema

DEFAULT_PORT = 9000


class ClickHouseStore:
    """One connection to one ClickHouse server; bootstraps the schema like ChdbStore on open."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 5.0,
        send_receive_timeout: float = 120.0,
        sync_request_timeout: float = 5.0,
    ) -> None:
        from clickhouse_driver import Client  # imported here: only commands that open a server store pay for it

        self.url = url
        self.host, self.port, user, password, self.database = _parse_url(url)
        self._client = Client(
            self.host,
            port=self.port,
            user=user,
            password=password,
            database="default",  # always exists; the schema names its database in every statement
            connect_timeout=connect_timeout,
            send_receive_timeout=send_receive_timeout,
            sync_request_timeout=sync_request_timeout,
            client_name="qrtrace",
            settings={"max_query_size": MAX_QUERY_BYTES},
        )
        try:
            bootstrap_schema(self)
        except BaseException:
            self._client.disconnect()
            raise

    def _run(self, sql: str, **kwargs: object) -> object:
        try:
            return self._client.execute(sql, **kwargs)
        except Exception as exc:  # the driver raises its own types (and OSError/EOFError); callers get ours
            raise StoreError(self._sentence("refused a statement", exc)) from exc

    def _sentence(self, what: str, exc: Exception) -> str:
        from clickhouse_driver import errors

        where = f"The ClickHouse server at {self.host}:{self.port}"
        if isinstance(exc, errors.ServerException):
            detail = (exc.message or "").strip().splitlines()
            return f"{where} {what}: code {exc.code}, {detail[0] if detail else 'no message'}"
        if isinstance(exc, errors.NetworkError | errors.SocketTimeoutError | OSError | EOFError):
            return f"{where} cannot be reached or stopped answering: {_first_line(exc)}"
        return f"{where} {what}: {_first_line(exc)}"

    def execute(self, sql: str, params: Mapping[str, object] | None = None) -> None:
        self._run(render(sql, params or {}))

    def query(self, sql: str, params: Mapping[str, object] | None = None) -> dict[str, list]:
        data, types = self._run(render(sql, params or {}), with_column_types=True, columnar=True)  # type: ignore[misc]
        names = [name for name, _ in types]
        if not data:  # no rows: the driver returns no columns at all
            return {name: [] for name in names}
        return {name: list(values) for name, values in zip(names, data, strict=True)}

    def query_columns(self, sql: str, params: Mapping[str, object] | None = None) -> dict[str, np.ndarray]:
        result = self.query(sql, params)
        return {name: _numpy_column(values) for name, values in result.items()}

    def query_arrow(self, sql: str, params: Mapping[str, object] | None = None) -> pa.Table:
        """The result as an Arrow table (built from the driver's columns, UInt64 kept unsigned)."""
        data, types = self._run(render(sql, params or {}), with_column_types=True, columnar=True)  # type: ignore[misc]
        columns = data or [[] for _ in types]
        return pa.table({name: pa.array(list(values), pa.uint64() if kind == "UInt64" else None)
                         for (name, kind), values in zip(types, columns, strict=True)})  # fmt: skip

    def insert(self, table: str, columns: Columns) -> None:
        """Columnar insert: one statement (one native data block per 1M rows) for the whole batch."""
        values = [_column(v) for v in columns.values()]
        if not values or not len(values[0]):
            return
        names = ", ".join(columns)
        try:
            self._client.execute(f"INSERT INTO {table} ({names}) VALUES", values, columnar=True)
        except Exception as exc:
            raise StoreError(self._sentence(f"refused an insert into {table}", exc)) from exc

    def close(self) -> None:
        self._client.disconnect()

    def __enter__(self) -> ClickHouseStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _column(values: Sequence[object] | np.ndarray) -> list:
    """Plain Python values: the driver's numpy path is opt-in per client and this keeps one client."""
    if isinstance(values, np.ndarray):
        return values.tolist()
    return values if isinstance(values, list) else list(values)


def _numpy_column(values: list) -> np.ndarray:
    if values and isinstance(values[0], str):
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out
    if not values or isinstance(values[0], int):
        try:
            return np.asarray(values, dtype=np.int64)
        except OverflowError:  # a UInt64 past Int64 (a hash)
            return np.asarray(values, dtype=np.uint64)
    return np.asarray(values)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _parse_url(url: str) -> tuple[str, int, str, str, str]:
    parts = urlsplit(url)
    if parts.scheme != "clickhouse" or not parts.hostname:
        raise InputError(f"The store URL {url!r} is not of the form clickhouse://host:port/db.")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise InputError(f"The store URL {url!r} has an invalid port.") from None
    user = unquote(parts.username) if parts.username else "default"
    password = unquote(parts.password) if parts.password else ""
    database = parts.path.strip("/") or "qrtrace"
    return parts.hostname, port, user, password, database
