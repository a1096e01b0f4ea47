"""SQL text and parameters in one place: statements live in .sql files, values are rendered here.

Placeholders use ClickHouse's `{name:Type}` spelling. The Debian server (18.16) predates server-side
query parameters, so values are rendered as typed, escaped literals by this module only; nothing
else in the project builds SQL from values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources

_PLACEHOLDER = re.compile(r"\{(\w+):([A-Za-z0-9(), ]+)\}")
_INT_TYPES = {"Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64"}


@cache
def load_sql(package: str, name: str) -> str:
    """The text of `<package>/sql/<name>.sql`."""
    return resources.files(package).joinpath(f"sql/{name}.sql").read_text(encoding="utf-8")


def split_statements(text: str) -> list[str]:
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def escape_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def literal(value: object, type_name: str) -> str:
    """Render `value` as a ClickHouse literal of `type_name`, refusing values of the wrong kind."""
    if type_name.startswith("Set(") and type_name.endswith(")"):
        return _set_literal(value, type_name[4:-1])
    if type_name.startswith("Tuple(") and type_name.endswith(")"):
        inner = [t.strip() for t in type_name[6:-1].split(",")]
        if not isinstance(value, Sequence) or isinstance(value, str | bytes) or len(value) != len(inner):
            raise TypeError(f"expected a {len(inner)}-tuple for {type_name}")
        return "(" + ",".join(literal(v, t) for v, t in zip(value, inner, strict=True)) + ")"
    if type_name.startswith("Array(") and type_name.endswith(")"):
        if not isinstance(value, Sequence) or isinstance(value, str | bytes):
            raise TypeError(f"expected a sequence for {type_name}")
        inner = type_name[6:-1]
        return "[" + ",".join(literal(v, inner) for v in value) + "]"
    if type_name in _INT_TYPES:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an int for {type_name}, got {type(value).__name__}")
        return str(int(value))
    if type_name == "Float64":
        return repr(float(value))  # type: ignore[arg-type]
    if type_name == "String":
        if not isinstance(value, str):
            raise TypeError(f"expected a str for String, got {type(value).__name__}")
        return escape_string(value)
    raise TypeError(f"unsupported parameter type {type_name}")


def _set_literal(value: object, inner: str) -> str:
    """`x IN {v:Set(T)}` renders as `x IN (a, b, ...)`: a literal set, no subquery (both engines)."""
    if not isinstance(value, Sequence) or isinstance(value, str | bytes) or not value:
        raise TypeError(f"expected a non-empty sequence for Set({inner})")
    if inner == "Tuple(String, UInt32)":  # a trace hop's (venue, bucket) cells: tens of thousands per statement
        items = [f"({escape_string(v)},{_uint(b)})" for v, b in value]
    elif inner == "String":  # the common case, kept cheap: one escape per value
        for v in value:
            if not isinstance(v, str):
                raise TypeError(f"expected a str in Set(String), got {type(v).__name__}")
        items = list(map(escape_string, value))
    else:
        items = [literal(v, inner) for v in value]
    if len(items) == 1:  # `(('a', 1))` would read as the tuple itself, not a set holding it
        items.append(items[0])
    return "(" + ",".join(items) + ")"


def _uint(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"expected a non-negative int, got {value!r}")
    return value


def render(sql: str, params: Mapping[str, object]) -> str:
    """Substitute every `{name:Type}` placeholder; a missing parameter is an error, not an empty value."""

    def sub(match: re.Match[str]) -> str:
        name, type_name = match.group(1), match.group(2)
        if name not in params:
            raise KeyError(f"SQL parameter {name} was not given")
        return literal(params[name], type_name)

    return _PLACEHOLDER.sub(sub, sql)


# Values travel inline as literals (the 18.16 server has no query parameters) and a statement is
# limited by max_query_size (256 KiB by default): long value lists are sent in chunks of this size.
IN_LIST_CHUNK = 2_000


def chunked(values: Sequence[str], size: int = IN_LIST_CHUNK) -> list[list[str]]:
    """Split a value list for `IN {x:Array(String)}` parameters into statement-sized pieces."""
    return [list(values[i : i + size]) for i in range(0, len(values), size)]
