"""Avro BACKWARD compatibility: can a reader schema read every datum written with a writer schema?

fastavro resolves schemas at read time but has no checker, so the rules of the Avro specification's
"Schema Resolution" section are implemented here. The answer is either None (compatible) or a clause
naming the offending field, e.g. ``Checkin.mode drops enum symbol 'manual' and has no default``.
"""

from __future__ import annotations

from typing import Any

import fastavro

AvroSchema = dict[str, Any] | list[Any] | str

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})

# writer type -> reader types that can read it (Avro spec, "Schema Resolution").
PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}

NAMED = frozenset({"record", "error", "enum", "fixed"})


def backward_incompatibility(reader: AvroSchema, writer: AvroSchema) -> str | None:
    """Why `reader` cannot read data written with `writer` (a clause naming the field), or None if it can.

    Both schemas are given as plain JSON-like Avro (dict, list or type name); they are parsed here so
    that named-type references resolve to full names.
    """
    reader_named: dict[str, Any] = {}
    writer_named: dict[str, Any] = {}
    parsed_reader = fastavro.parse_schema(reader, named_schemas=reader_named)
    parsed_writer = fastavro.parse_schema(writer, named_schemas=writer_named)
    checker = _Checker(reader_named, writer_named)
    return checker.check(parsed_reader, parsed_writer, _root_path(parsed_reader))


def describe(schema: Any) -> str:
    """A short human name for a (parsed) schema: ``string``, ``record Checkin``, ``array of long``."""
    if isinstance(schema, str):
        return _short(schema)
    if isinstance(schema, list):
        return "union of " + ", ".join(describe(branch) for branch in schema)
    kind = schema["type"]
    if kind in NAMED:
        return f"{kind} {_short(schema['name'])}"
    if kind == "array":
        return f"array of {describe(schema['items'])}"
    if kind == "map":
        return f"map of {describe(schema['values'])}"
    return describe(kind)


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _root_path(schema: Any) -> str:
    if isinstance(schema, dict) and schema.get("type") in NAMED:
        return _short(schema["name"])
    return "the schema"


def _kind(schema: Any) -> str:
    """'union', a primitive name, or the complex type (record, enum, array, ...)."""
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, str):
        return schema
    return "record" if schema["type"] == "error" else schema["type"]


def _names_match(reader: dict[str, Any], writer: dict[str, Any]) -> bool:
    # The spec matches named types by unqualified name; reader aliases may name the writer's type.
    wanted = _short(writer["name"])
    aliases = {_short(a) for a in reader.get("aliases", ())}
    return _short(reader["name"]) == wanted or wanted in aliases


class _Checker:
    """One comparison of a reader against a writer, with both sides' named types at hand."""

    def __init__(self, reader_named: dict[str, Any], writer_named: dict[str, Any]) -> None:
        self._reader_named = reader_named
        self._writer_named = writer_named
        # Record pairs being compared right now: a recursive type meeting itself again is assumed fine.
        self._in_progress: set[tuple[str, str]] = set()

    def check(self, reader: Any, writer: Any, path: str) -> str | None:
        reader = _resolve(reader, self._reader_named)
        writer = _resolve(writer, self._writer_named)
        if isinstance(writer, list):
            return self._check_writer_union(reader, writer, path)
        if isinstance(reader, list):
            return self._check_reader_union(reader, writer, path)
        return self._check_plain(reader, writer, path)

    def _check_writer_union(self, reader: Any, writer: list[Any], path: str) -> str | None:
        # Every branch the writer may have chosen must be readable.
        for branch in writer:
            problem = self.check(reader, branch, path)
            if problem is None:
                continue
            branch = _resolve(branch, self._writer_named)
            if isinstance(reader, list) or self._same_kind(reader, branch):
                return problem  # the reader has a place for these values: report the deeper problem
            return f"{path} can no longer hold the {describe(branch)} values the previous version wrote"
        return None

    def _check_reader_union(self, reader: list[Any], writer: Any, path: str) -> str | None:
        branches = [_resolve(b, self._reader_named) for b in reader]
        same = [b for b in branches if self._same_kind(b, writer)]
        if same:
            return self._check_plain(same[0], writer, path)
        if any(self._check_plain(b, writer, path) is None for b in branches):
            return None
        return f"{path} can no longer hold the {describe(writer)} values the previous version wrote"

    def _same_kind(self, reader: Any, writer: Any) -> bool:
        kind = _kind(reader)
        if isinstance(reader, list) or kind != _kind(writer):
            return False
        return _names_match(reader, writer) if kind in NAMED else True

    def _check_plain(self, reader: Any, writer: Any, path: str) -> str | None:
        r_kind, w_kind = _kind(reader), _kind(writer)
        if r_kind != w_kind:
            if r_kind in PROMOTIONS.get(w_kind, ()):
                return None
            change = f"from {describe(writer)} to {describe(reader)}"
            return f"{path} changes type {change}, which is not an Avro promotion"
        if r_kind in NAMED and not _names_match(reader, writer):
            return f"{path} is now {describe(reader)} but was written as {describe(writer)}"
        if r_kind == "record":
            return self._check_record(reader, writer, path)
        if r_kind == "enum":
            return _check_enum(reader, writer, path)
        if r_kind == "fixed" and reader["size"] != writer["size"]:
            return f"{path} changes fixed size from {writer['size']} to {reader['size']} bytes"
        if r_kind == "array":
            return self.check(reader["items"], writer["items"], f"{path}[]")
        if r_kind == "map":
            return self.check(reader["values"], writer["values"], f"{path}{{}}")
        return None

    def _check_record(self, reader: dict[str, Any], writer: dict[str, Any], path: str) -> str | None:
        key = (reader["name"], writer["name"])
        if key in self._in_progress:
            return None
        self._in_progress.add(key)
        try:
            return self._check_fields(reader, writer, path)
        finally:
            self._in_progress.discard(key)

    def _check_fields(self, reader: dict[str, Any], writer: dict[str, Any], path: str) -> str | None:
        written = {f["name"]: f for f in writer["fields"]}
        for field in reader["fields"]:
            field_path = f"{path}.{field['name']}"
            match = _find_field(field, written)
            if match is None:
                if "default" not in field:
                    return f"{field_path} is a new field without a default, so older records cannot be read"
                continue
            problem = self.check(field["type"], match["type"], field_path)
            if problem is not None:
                return problem
        return None


def _resolve(schema: Any, named: dict[str, Any]) -> Any:
    """Replace a named-type reference by its definition and ``{"type": "int"}`` by ``"int"``."""
    if isinstance(schema, str):
        return schema if schema in PRIMITIVES else named[schema]
    if isinstance(schema, dict) and schema["type"] in PRIMITIVES:
        return schema["type"]  # logical types do not change what can be read
    return schema


def _find_field(field: dict[str, Any], written: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    for name in (field["name"], *field.get("aliases", ())):
        if name in written:
            return written[name]
    return None


def _check_enum(reader: dict[str, Any], writer: dict[str, Any], path: str) -> str | None:
    if "default" in reader:
        return None  # unknown writer symbols read as the default
    known = set(reader["symbols"])
    missing = [s for s in writer["symbols"] if s not in known]
    if not missing:
        return None
    listed = ", ".join(repr(s) for s in missing)
    plural = "s" if len(missing) > 1 else ""
    return f"{path} drops enum symbol{plural} {listed} and has no default"
