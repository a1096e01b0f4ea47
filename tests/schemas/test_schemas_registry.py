"""The local schema registry: stable global ids, BACKWARD compatibility, persistence."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from qrtrace.errors import InputError, QrtraceError
from qrtrace.schemas.compat import backward_incompatibility
from qrtrace.schemas.registry import (
    CHECKINS_SUBJECT,
    IncompatibleSchemaError,
    InvalidSchemaError,
    SchemaRegistry,
    UnknownSchemaError,
    default_registry,
    load_packaged,
)


def record(*fields: dict[str, Any], name: str = "R") -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": "vn.qrtrace.test", "fields": list(fields)}


def field(name: str, type_: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


def enum(*symbols: str, **extra: Any) -> dict[str, Any]:
    return {"type": "enum", "name": "E", "symbols": list(symbols), **extra}


def refused(reader: Any, writer: Any) -> str:
    problem = backward_incompatibility(reader, writer)
    assert problem is not None, "expected the change to be refused"
    return problem


def accepted(reader: Any, writer: Any) -> None:
    assert backward_incompatibility(reader, writer) is None


# --------------------------------------------------------------------------------------------- ids


def test_ids_are_global_and_start_at_one() -> None:
    registry = SchemaRegistry()
    a = record(field("a", "string"))
    b = record(field("a", "string"), field("b", "long", default=0))
    assert registry.register("x-value", a) == 1
    assert registry.register("x-value", b) == 2
    assert registry.register("y-value", record(field("z", "int"), name="Other")) == 3
    assert registry.versions("x-value") == [1, 2]
    assert registry.latest("x-value")[0] == 2
    assert registry.subjects() == ["x-value", "y-value"]


def test_re_registering_returns_the_same_id_and_adds_no_version() -> None:
    registry = SchemaRegistry()
    schema = record(field("a", "string"))
    first = registry.register("x-value", schema)
    assert registry.register("x-value", copy.deepcopy(schema)) == first
    # Key order does not make a different schema.
    reordered = {k: schema[k] for k in reversed(list(schema))}
    assert registry.register("x-value", reordered) == first
    assert registry.versions("x-value") == [first]


def test_an_older_version_registered_again_keeps_its_id() -> None:
    registry = default_registry()
    v1_id, v2_id, v3_id = registry.versions(CHECKINS_SUBJECT)
    assert registry.register(CHECKINS_SUBJECT, load_packaged("checkin", 1)) == v1_id
    assert registry.versions(CHECKINS_SUBJECT) == [v1_id, v2_id, v3_id]


def test_the_same_schema_under_two_subjects_shares_its_id() -> None:
    registry = SchemaRegistry()
    schema = record(field("a", "string"))
    assert registry.register("x-value", schema) == registry.register("y-value", schema)


def test_registry_keeps_its_own_copy() -> None:
    registry = SchemaRegistry()
    schema = record(field("a", "string"))
    schema_id = registry.register("x-value", schema)
    schema["fields"].append(field("b", "string"))
    assert registry.schema_json(schema_id) == record(field("a", "string"))


def test_default_registry_subjects() -> None:
    registry = default_registry()
    assert registry.subjects() == sorted(
        [
            "checkins-value",
            "venues-value",
            "cases-value",
            "visits-value",
            "checkins.dlq-value",
            "identities-value",
            "checkins-vn.qrtrace.CheckinBundle",
        ]
    )
    v1_id, v2_id, v3_id = registry.versions(CHECKINS_SUBJECT)
    assert (v1_id, v2_id, v3_id) == (1, 2, 3)
    assert registry.schema_json(v2_id) == load_packaged("checkin", 2)
    assert registry.schema_json(v3_id) == load_packaged("checkin", 3)
    assert registry.schema_by_id(v2_id)["name"] == "vn.qrtrace.Checkin"


def test_unknown_lookups_raise_one_sentence_errors() -> None:
    registry = default_registry()
    for call in (lambda: registry.schema_by_id(99), lambda: registry.latest("nope-value")):
        with pytest.raises(UnknownSchemaError) as caught:
            call()
        assert isinstance(caught.value, QrtraceError)
        assert str(caught.value).endswith(".")
    with pytest.raises(UnknownSchemaError, match=r"checkin\.v1"):
        load_packaged("checkin", 9)


def test_invalid_avro_is_refused() -> None:
    with pytest.raises(InvalidSchemaError, match="not valid Avro"):
        SchemaRegistry().register("x-value", record(field("a", "strnig")))


# ---------------------------------------------------------------------------------- compatibility


def test_incompatible_changes_are_refused_naming_the_field() -> None:
    registry = default_registry()
    v3 = load_packaged("checkin", 3)
    changes = {
        "without a default": lambda s: s["fields"].append(field("temperature", "float")),
        "venue_id changes type from string to int": lambda s: s["fields"][1].update(type="int"),
        "drops enum symbol 'manual'": lambda s: s["fields"][6]["type"]["symbols"].remove("manual"),
    }
    for expected, change in changes.items():
        schema = copy.deepcopy(v3)
        change(schema)
        with pytest.raises(IncompatibleSchemaError) as caught:
            registry.register(CHECKINS_SUBJECT, schema)
        message = str(caught.value)
        assert expected in message
        assert "Checkin." in message and "version 3" in message
        assert message.endswith(".") and "\n" not in message
    assert registry.versions(CHECKINS_SUBJECT) == [1, 2, 3]


def test_compatible_changes_are_registered() -> None:
    registry = default_registry()
    schema = load_packaged("checkin", 2)
    schema["fields"].pop(0)  # removing a field is fine: the reader ignores it
    schema["fields"].append(field("temperature", ["null", "float"], default=None))
    schema["fields"][4]["type"] = "double"  # event_time_us long -> double is a promotion
    new_id = registry.register(CHECKINS_SUBJECT, schema)
    assert new_id == max(i for s in registry.subjects() for i in registry.versions(s))  # the newest global id
    assert registry.versions(CHECKINS_SUBJECT) == [1, 2, 3, new_id]


def test_new_field_needs_a_default() -> None:
    writer = record(field("a", "string"))
    assert "R.b is a new field without a default" in refused(record(field("a", "string"), field("b", "int")), writer)
    accepted(record(field("a", "string"), field("b", "int", default=0)), writer)


@pytest.mark.parametrize(
    ("writer", "reader"),
    [
        ("int", "long"),
        ("int", "float"),
        ("int", "double"),
        ("long", "float"),
        ("long", "double"),
        ("float", "double"),
        ("string", "bytes"),
        ("bytes", "string"),
    ],
)
def test_promotions_are_accepted(writer: str, reader: str) -> None:
    accepted(record(field("a", reader)), record(field("a", writer)))


@pytest.mark.parametrize(
    ("writer", "reader"),
    [("long", "int"), ("double", "float"), ("string", "int"), ("boolean", "int"), ("int", "string")],
)
def test_other_type_changes_are_refused(writer: str, reader: str) -> None:
    assert f"R.a changes type from {writer} to {reader}" in refused(
        record(field("a", reader)), record(field("a", writer))
    )


def test_enum_symbols() -> None:
    writer = record(field("e", enum("x", "y")))
    assert "R.e drops enum symbol 'y'" in refused(record(field("e", enum("x"))), writer)
    accepted(record(field("e", enum("x", default="x"))), writer)
    accepted(record(field("e", enum("y", "x", "z"))), writer)


def test_unions() -> None:
    nullable = record(field("a", ["null", "string"], default=None))
    plain = record(field("a", "string"))
    accepted(nullable, plain)  # a reader union takes the writer's type
    assert "can no longer hold the null values" in refused(plain, nullable)
    accepted(record(field("a", ["null", "long"], default=None)), record(field("a", ["null", "int"], default=None)))
    accepted(record(field("a", ["string", "null", "long"])), nullable)
    assert "R.a" in refused(record(field("a", ["null", "int"], default=None)), nullable)


def test_nested_records_arrays_and_maps_are_checked_with_a_path() -> None:
    def outer(inner_fields: list[dict[str, Any]]) -> dict[str, Any]:
        inner = {"type": "record", "name": "Inner", "fields": inner_fields}
        return record(
            field("one", inner),
            field("many", {"type": "array", "items": "Inner"}),
            field("by_key", {"type": "map", "values": "Inner"}),
        )

    writer = outer([field("x", "int")])
    accepted(outer([field("x", "long")]), writer)
    assert "R.one.x changes type from int to string" in refused(outer([field("x", "string")]), writer)

    arrays = record(field("tags", {"type": "array", "items": "string"}))
    assert "R.tags[] changes type" in refused(record(field("tags", {"type": "array", "items": "int"})), arrays)
    maps = record(field("m", {"type": "map", "values": enum("a", "b")}))
    assert "R.m{} drops enum symbol 'b'" in refused(record(field("m", {"type": "map", "values": enum("a")})), maps)
    assert "changes type from array of string to map of string" in refused(
        record(field("tags", {"type": "map", "values": "string"})), arrays
    )


def test_record_names_and_aliases() -> None:
    writer = record(field("a", "string"), name="Old")
    assert "is now record New but was written as record Old" in refused(
        record(field("a", "string"), name="New"), writer
    )
    accepted({**record(field("a", "string"), name="New"), "aliases": ["Old"]}, writer)
    accepted(record(field("b", "string", aliases=["a"]), name="Old"), writer)


def test_fixed_size_and_recursive_types() -> None:
    fixed = record(field("f", {"type": "fixed", "name": "F", "size": 16}))
    assert "fixed size from 16 to 8" in refused(record(field("f", {"type": "fixed", "name": "F", "size": 8})), fixed)
    linked = {
        "type": "record",
        "name": "Node",
        "fields": [field("value", "int"), field("next", ["null", "Node"], default=None)],
    }
    accepted(linked, linked)
    wider = copy.deepcopy(linked)
    wider["fields"][0]["type"] = "long"
    accepted(wider, linked)


# ------------------------------------------------------------------------------------- persistence


def test_persistence_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "registry" / "schemas.json"
    first = default_registry(path)
    assert path.exists()
    second = SchemaRegistry(path)
    assert second.subjects() == first.subjects()
    for subject in first.subjects():
        assert second.versions(subject) == first.versions(subject)
        for schema_id in first.versions(subject):
            assert second.schema_json(schema_id) == first.schema_json(schema_id)
            assert second.schema_by_id(schema_id) == first.schema_by_id(schema_id)
    # Reopening and re-registering the packaged schemas changes nothing; new schemas continue the ids.
    assert default_registry(path).versions(CHECKINS_SUBJECT) == [1, 2, 3]
    newest = max(i for s in first.subjects() for i in first.versions(s))
    assert SchemaRegistry(path).register("new-value", record(field("a", "string"))) == newest + 1
    assert SchemaRegistry(path).versions("new-value") == [newest + 1]
    assert [p.name for p in path.parent.iterdir()] == ["schemas.json"]  # no temp files left


def test_a_failed_write_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "schemas.json"
    registry = SchemaRegistry(path)
    registry.register("x-value", record(field("a", "string")))
    before = path.read_bytes()

    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        registry.register("y-value", record(field("b", "string"), name="B"))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["schemas.json"]
    assert registry.subjects() == ["x-value"]  # memory still matches the file
    monkeypatch.undo()
    assert registry.register("y-value", record(field("b", "string"), name="B")) == 2


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        json.dumps({"format": 99}),
        json.dumps({"format": 1, "schemas": {}, "subjects": {"x": [5]}}),
    ],
)
def test_an_unreadable_file_is_an_input_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "schemas.json"
    path.write_text(content)
    with pytest.raises(InputError, match="is not a readable schema registry file"):
        SchemaRegistry(path)
