"""Confluent wire format: framing, bad messages, and the generated codecs agreeing with fastavro."""

from __future__ import annotations

import io
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from qrtrace.errors import InputError, QrtraceError
from qrtrace.schemas import fastcodec, wire
from qrtrace.schemas.registry import CHECKINS_SUBJECT, SchemaRegistry, default_registry
from qrtrace.schemas.wire import WireFormatError

CHECKIN = {
    "scan_id": "s-1",
    "venue_id": "TQ-1",
    "person": "ab" * 32,
    "direction": "in",
    "event_time_us": 1_626_000_000_000_000,
    "offset_minutes": 420,
    "mode": "manual",
    "scanner_id": "paper-7",
    "declaration_sealed": None,
    "zone": "",
}


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return default_registry()


def _checkin_messages(registry: SchemaRegistry, count: int = 3) -> list[bytes]:
    schema_id, schema = registry.latest(CHECKINS_SUBJECT)
    return wire.encode_batch(schema_id, schema, [{**CHECKIN, "scan_id": f"s-{i}"} for i in range(count)])


def test_framing(registry: SchemaRegistry) -> None:
    message = _checkin_messages(registry, 1)[0]
    assert message[:5] == b"\x00\x00\x00\x00\x03"
    assert wire.schema_id_of(message) == 3
    assert wire.header(258) == b"\x00\x00\x00\x01\x02"


def _bad(registry: SchemaRegistry, message: bytes, match: str) -> None:
    good = _checkin_messages(registry, 2)
    with pytest.raises(WireFormatError, match=match) as caught:
        wire.decode_batch(registry, [*good, message])
    assert "Message 2 of the batch" in str(caught.value)
    assert isinstance(caught.value, QrtraceError)
    with pytest.raises(WireFormatError, match=match):
        wire.decode(registry, message)


def test_short_message(registry: SchemaRegistry) -> None:
    _bad(registry, b"", "0 bytes long, shorter than the 5-byte")
    _bad(registry, b"\x00\x00\x01", "3 bytes long")


def test_wrong_magic_byte(registry: SchemaRegistry) -> None:
    message = _checkin_messages(registry, 1)[0]
    _bad(registry, b"\x01" + message[1:], "starts with byte 0x01, not the Confluent magic byte")
    _bad(registry, b'{"scan_id": 1}', "starts with byte 0x7b")


def test_unknown_schema_id(registry: SchemaRegistry) -> None:
    message = _checkin_messages(registry, 1)[0]
    _bad(registry, b"\x00\x00\x00\x01\x00" + message[5:], "schema id 256, which the registry does not know")


def test_truncated_body(registry: SchemaRegistry) -> None:
    message = _checkin_messages(registry, 1)[0]
    for cut in (6, 20, len(message) - 1):
        _bad(registry, message[:cut], "ends before the record is complete")


def test_trailing_bytes(registry: SchemaRegistry) -> None:
    message = _checkin_messages(registry, 1)[0]
    _bad(registry, message + b"\x00\x00", "2 bytes left over after the record")


def test_garbled_body(registry: SchemaRegistry) -> None:
    message = bytearray(_checkin_messages(registry, 1)[0])
    message[6] = 0xFF  # inside scan_id: not UTF-8
    _bad(registry, bytes(message), "cannot be decoded: 'utf-8' codec")


def test_buffers_other_than_bytes_are_accepted(registry: SchemaRegistry) -> None:
    message = _checkin_messages(registry, 1)[0]
    assert wire.decode_batch(registry, [bytearray(message), memoryview(message)]) == [{**CHECKIN, "scan_id": "s-0"}] * 2


def test_records_that_do_not_fit_are_input_errors(registry: SchemaRegistry) -> None:
    schema_id, schema = registry.latest(CHECKINS_SUBJECT)
    missing = {k: v for k, v in CHECKIN.items() if k != "venue_id"}
    with pytest.raises(InputError, match="Record 1 of the batch cannot be encoded with schema id 3"):
        wire.encode_batch(schema_id, schema, [CHECKIN, missing])
    with pytest.raises(InputError, match="The record cannot be encoded"):
        wire.encode(schema_id, schema, {**CHECKIN, "direction": "sideways"})
    with pytest.raises(InputError):
        wire.encode(schema_id, schema, {**CHECKIN, "declaration_sealed": "not bytes"})


def test_fastavro_decides_what_the_generated_codec_refuses(registry: SchemaRegistry) -> None:
    schema_id, schema = registry.latest(CHECKINS_SUBJECT)
    # A bytearray declaration is valid for fastavro though the generated encoder wants bytes.
    odd = {**CHECKIN, "declaration_sealed": bytearray(b"xy")}
    assert wire.decode(registry, wire.encode(schema_id, schema, odd)) == {
        **CHECKIN,
        "declaration_sealed": b"xy",
    }
    assert wire.encode_batch(schema_id, schema, [CHECKIN, odd])[0] == wire.encode(schema_id, schema, CHECKIN)


def test_schemas_out_of_the_generated_scope_go_through_fastavro() -> None:
    registry = SchemaRegistry()
    nested = {
        "type": "record",
        "name": "Outer",
        "fields": [
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
            {"name": "tags", "type": {"type": "array", "items": "string"}},
            {
                "name": "inner",
                "type": {"type": "record", "name": "Inner", "fields": [{"name": "x", "type": "int"}]},
            },
        ],
    }
    assert fastcodec.compile_encoder(nested) is None
    schema_id = registry.register("outer-value", nested)
    value = {"at": 1_626_000_000_000_000, "tags": ["a", "b"], "inner": {"x": 5}}
    [message] = wire.encode_batch(schema_id, registry.schema_by_id(schema_id), [value])
    decoded = wire.decode(registry, message)
    assert decoded["tags"] == ["a", "b"] and decoded["inner"] == {"x": 5}
    with pytest.raises(WireFormatError, match="ends before"):
        wire.decode_batch(registry, [message[:-1]])


def test_v1_and_v2_mixed_in_one_batch(registry: SchemaRegistry) -> None:
    v1_id, v2_id, v3_id = registry.versions(CHECKINS_SUBJECT)
    v1_record = {k: v for k, v in CHECKIN.items() if k not in ("declaration_sealed", "zone")}
    v2_record = {**v1_record, "declaration_sealed": b"x"}
    v1 = wire.encode(v1_id, registry.schema_by_id(v1_id), v1_record)
    v2 = wire.encode(v2_id, registry.schema_by_id(v2_id), v2_record)
    v3 = wire.encode(v3_id, registry.schema_by_id(v3_id), {**CHECKIN, "zone": "Khu A"})
    assert wire.decode_batch(registry, [v1, v2]) == [v1_record, v2_record]
    reader = registry.schema_by_id(v3_id)  # older producers keep working: the reader's defaults fill in
    assert wire.decode_batch(registry, [v1, v2, v3], reader_schema=reader) == [
        CHECKIN,
        {**CHECKIN, "declaration_sealed": b"x"},
        {**CHECKIN, "zone": "Khu A"},
    ]


# --------------------------------------------- generated codecs against fastavro (the reference)

KINDS = ["null", "boolean", "int", "long", "float", "double", "string", "bytes", "enum"]
SYMBOLS = ["a", "b", "c", "d"]

field_kinds = st.tuples(st.sampled_from(KINDS), st.sampled_from(["plain", "null_first", "null_last"]))


def _field_type(kind: str, wrap: str, index: int) -> Any:
    base: Any = {"type": "enum", "name": f"E{index}", "symbols": SYMBOLS} if kind == "enum" else kind
    if kind == "null" or wrap == "plain":
        return base
    return ["null", base] if wrap == "null_first" else [base, "null"]


def _schema(kinds: list[tuple[str, str]]) -> dict[str, Any]:
    fields = [{"name": f"f{i}", "type": _field_type(k, w, i)} for i, (k, w) in enumerate(kinds)]
    return {"type": "record", "name": "Flat", "namespace": "t", "fields": fields}


VALUES: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1) | st.integers(-20_000, 20_000),
    "float": st.floats(width=32),
    "double": st.floats(),
    "string": st.text(),
    "bytes": st.binary(),
    "enum": st.sampled_from(SYMBOLS),
}

# Values of any type, to check the fast path never accepts what fastavro would treat differently.
ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=5),
    st.binary(max_size=5),
    st.sampled_from([*SYMBOLS, "z", bytearray(b"x"), 1.0]),
)


@st.composite
def schemas_and_records(draw: st.DrawFn, values_of_any_type: bool = False) -> tuple[dict[str, Any], list[Any]]:
    kinds = draw(st.lists(field_kinds, max_size=8))
    records = []
    for _ in range(draw(st.integers(1, 4))):
        rec = {}
        for i, (kind, wrap) in enumerate(kinds):
            value = ANYTHING if values_of_any_type else VALUES[kind]
            rec[f"f{i}"] = draw(value if wrap == "plain" or values_of_any_type else st.none() | value)
        records.append(rec)
    return _schema(kinds), records


def _fastavro_bytes(schema: Any, record: Any) -> bytes | None:
    buf = io.BytesIO()
    try:
        fastavro.schemaless_writer(buf, schema, record)
    except Exception:
        return None
    return buf.getvalue()


def _fastavro_record(writer: Any, body: bytes, reader: Any = None) -> Any:
    buf = io.BytesIO(body)
    try:
        value = fastavro.schemaless_reader(buf, writer, reader)
    except Exception:
        return None
    return value if buf.tell() == len(body) else None


HEADER = wire.header(1)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schemas_and_records())
def test_generated_codec_matches_fastavro(case: tuple[dict[str, Any], list[Any]]) -> None:
    schema, records = case
    parsed = fastavro.parse_schema(schema)
    encode, decode = fastcodec.compile_encoder(parsed), fastcodec.compile_decoder(parsed)
    assert encode is not None and decode is not None
    for record in records:
        expected = _fastavro_bytes(parsed, record)
        assert expected is not None
        message = encode(record, HEADER)
        assert message == HEADER + expected
        # repr() so that NaN compares equal to NaN.
        assert repr(decode(message, 5)) == repr(_fastavro_record(parsed, expected))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schemas_and_records(values_of_any_type=True))
def test_wire_encoding_of_any_value_agrees_with_fastavro(case: tuple[dict[str, Any], list[Any]]) -> None:
    schema, records = case
    parsed = fastavro.parse_schema(schema)
    for record in records:
        expected = _fastavro_bytes(parsed, record)
        if expected is None:
            with pytest.raises(InputError):
                wire.encode(1, parsed, record)
        else:
            assert wire.encode(1, parsed, record) == HEADER + expected


class _OneSchema:
    def __init__(self, schema: Any) -> None:
        self.schema = schema

    def schema_by_id(self, schema_id: int) -> Any:
        return self.schema


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(field_kinds, max_size=6), st.binary(max_size=30))
def test_decoding_any_bytes_agrees_with_fastavro(kinds: list[tuple[str, str]], body: bytes) -> None:
    parsed = fastavro.parse_schema(_schema(kinds))
    expected = _fastavro_record(parsed, body)
    decode = fastcodec.compile_decoder(parsed)
    assert decode is not None
    try:
        fast = decode(HEADER + body, 5)
    except Exception:
        fast = None
    if fast is not None:  # the generated decoder only ever accepts what fastavro reads the same way
        assert repr(fast) == repr(expected)
    if expected is None:
        with pytest.raises(WireFormatError):
            wire.decode(_OneSchema(parsed), HEADER + body)
    else:
        assert repr(wire.decode(_OneSchema(parsed), HEADER + body)) == repr(expected)


@st.composite
def evolutions(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A writer schema, a record, and a reader that drops, reorders and adds fields and enum symbols."""
    kinds = draw(st.lists(field_kinds, min_size=1, max_size=6))
    writer = _schema(kinds)
    record = {f"f{i}": draw(VALUES[k] if w == "plain" else st.none() | VALUES[k]) for i, (k, w) in enumerate(kinds)}
    kept = draw(st.lists(st.sampled_from(writer["fields"]), unique_by=lambda f: f["name"]))
    fields = []
    for spec in kept:
        spec = {**spec}
        if isinstance(spec["type"], dict) and draw(st.booleans()):
            spec["type"] = {**spec["type"], "symbols": ["z", *SYMBOLS]}
        fields.append(spec)
    if draw(st.booleans()):
        fields.append({"name": "added", "type": ["null", "string"], "default": None})
    if draw(st.booleans()):
        fields.append({"name": "added_long", "type": "long", "default": 7})
    reader = {**writer, "fields": draw(st.permutations(fields))}
    return writer, reader, record


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(evolutions())
def test_generated_resolution_matches_fastavro(
    case: tuple[dict[str, Any], dict[str, Any], dict[str, Any]],
) -> None:
    writer, reader, record = case
    parsed_writer, parsed_reader = fastavro.parse_schema(writer), fastavro.parse_schema(reader)
    body = _fastavro_bytes(parsed_writer, record)
    assert body is not None
    expected = _fastavro_record(parsed_writer, body, parsed_reader)
    assume(expected is not None)
    decode = fastcodec.compile_decoder(parsed_writer, parsed_reader)
    assert decode is not None
    assert repr(decode(HEADER + body, 5)) == repr(expected)
    assert repr(wire.decode(_OneSchema(parsed_writer), HEADER + body, reader)) == repr(expected)


@pytest.mark.parametrize(
    "value",
    [
        0,
        1,
        -1,
        63,
        -64,
        64,
        8191,
        -8192,
        8192,
        2**31,
        1_626_000_000_000_000,
        2**55 - 1,
        -(2**55),
        2**55,
        2**63 - 1,
    ],
)
def test_write_long_matches_fastavro(value: int) -> None:
    schema = fastavro.parse_schema({"type": "record", "name": "L", "fields": [{"name": "v", "type": "long"}]})
    assert fastcodec.write_long(value) == _fastavro_bytes(schema, {"v": value})


def test_write_long_refuses_more_than_64_bits() -> None:
    with pytest.raises(OverflowError):
        fastcodec.write_long(2**63)
