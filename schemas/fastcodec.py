"""Straight-line Avro binary codecs for flat records, generated as Python source once per schema.

fastavro interprets the schema for every datum, which costs about 1 µs per field. Check-ins are flat
records (strings, longs, enums, one nullable bytes), so for such schemas this module writes one Python
function that encodes or decodes a whole record with no per-field dispatch: about twice as fast.

Scope: a top-level record whose fields are null, boolean, int, long, float, double, string, bytes, an
enum of at most 64 symbols, or a union of null and one of those; no logical types. Anything else gets
None and the caller uses fastavro. The generated functions are strict: whatever looks odd (a value of
an unexpected type, a malformed body) makes them raise, and the caller then retries with fastavro, so
fastavro stays the reference for edge cases and error messages. Tests check both agree byte for byte.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fastavro

PRIMITIVE_KINDS = frozenset({"null", "boolean", "int", "long", "float", "double", "string", "bytes"})
MAX_ENUM_SYMBOLS = 64  # indices 0..63 zigzag-encode to one varint byte
SMALL_LIMIT = 1 << 13  # ints in [-8192, 8192) come from a precomputed table

Encoder = Callable[[dict[str, Any], bytes], bytes]
Decoder = Callable[[bytes, int], dict[str, Any]]


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63)


_SMALL = [_varint(_zigzag(n)) for n in range(-SMALL_LIMIT, SMALL_LIMIT)]


_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1
# Continuation bits (0x80) on the first k - 1 bytes of a k-byte varint.
_CONTINUATION = [0] + [sum(0x80 << (8 * i) for i in range(k - 1)) for k in range(1, 9)]


def write_long(n: int) -> bytes:
    """Avro zigzag varint of a 64-bit int (the generated encoders' path for |n| >= 8192)."""
    if not _LONG_MIN <= n <= _LONG_MAX:
        raise OverflowError(f"{n} does not fit in an Avro long")
    zz = (n << 1) ^ (n >> 63)
    if zz >> 56:
        return _varint(zz)
    # Timestamps take 8 bytes: spreading the 7-bit groups into byte lanes with three shift-and-mask
    # steps costs about half of a byte-by-byte loop.
    size = (zz.bit_length() + 6) // 7 or 1
    x = (zz & 0x0FFFFFFF) | ((zz & 0xFFFFFFF0000000) << 4)
    x = (x & 0x00003FFF00003FFF) | ((x & 0x0FFFC0000FFFC000) << 2)
    x = (x & 0x007F007F007F007F) | ((x & 0x3F803F803F803F80) << 1)
    return (x | _CONTINUATION[size]).to_bytes(size, "little")


@dataclass(frozen=True, slots=True)
class FieldType:
    """A field type the generated code handles: a primitive kind, an enum, or null-or-something."""

    kind: str  # a primitive kind, "enum" or "nullable"
    symbols: tuple[str, ...] = ()
    enum_default: str | None = None
    inner: FieldType | None = None
    null_index: int = 0  # branch index of null in a nullable union


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: FieldType
    has_default: bool
    default: Any


def flat_fields(schema: Any) -> list[Field] | None:
    """The fields of a flat record schema (parsed or not), or None if the schema is out of scope."""
    named: dict[str, Any] = {}
    parsed = fastavro.parse_schema(schema, named_schemas=named)
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        return None
    fields: list[Field] = []
    for spec in parsed["fields"]:
        field_type = _field_type(spec["type"], named)
        if field_type is None or spec.get("aliases"):
            return None
        fields.append(Field(spec["name"], field_type, "default" in spec, spec.get("default")))
    return fields


def record_name(schema: Any) -> str:
    """Full name of a record schema."""
    return fastavro.parse_schema(schema)["name"]


def _field_type(spec: Any, named: dict[str, Any]) -> FieldType | None:
    if isinstance(spec, str):
        return FieldType(spec) if spec in PRIMITIVE_KINDS else _field_type(named[spec], named)
    if isinstance(spec, list):
        return _nullable(spec, named)
    if "logicalType" in spec:
        return None  # fastavro converts these values (datetimes, decimals): leave it to fastavro
    if spec["type"] in PRIMITIVE_KINDS:
        return FieldType(spec["type"])
    if spec["type"] == "enum" and len(spec["symbols"]) <= MAX_ENUM_SYMBOLS:
        return FieldType("enum", tuple(spec["symbols"]), spec.get("default"))
    return None


def _nullable(branches: list[Any], named: dict[str, Any]) -> FieldType | None:
    if len(branches) != 2 or branches.count("null") != 1:
        return None
    null_index = branches.index("null")
    inner = _field_type(branches[1 - null_index], named)
    if inner is None or inner.kind in ("nullable", "null"):
        return None
    return FieldType("nullable", inner=inner, null_index=null_index)


class _Source:
    """Lines of generated code plus the constants they refer to."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.namespace: dict[str, Any] = {
            "S": _SMALL,
            "L": SMALL_LIMIT,
            "W_LONG": write_long,
            "PACK_F": struct.Struct("<f").pack,
            "PACK_D": struct.Struct("<d").pack,
            "UNPACK_F": struct.Struct("<f").unpack_from,
            "UNPACK_D": struct.Struct("<d").unpack_from,
            "BOOL_W": {True: b"\x01", False: b"\x00"},
            "BOOL_R": {0: False, 1: True},
            "FAIL": _fail,
        }

    def const(self, value: Any) -> str:
        name = f"C{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def add(self, indent: int, *lines: str) -> None:
        self.lines.extend("    " * indent + line for line in lines)

    def build(self, name: str) -> Callable[..., Any]:
        # Safe to exec: the source is fixed templates, field names enter only as repr() literals, and
        # every schema-derived value (defaults, enum tables) is passed in the namespace, not as text.
        exec(compile("\n".join(self.lines), f"<qrtrace fastcodec {name}>", "exec"), self.namespace)
        return self.namespace[name]


# ---------------------------------------------------------------------------------------------- encode


def compile_encoder(schema: Any) -> Encoder | None:
    """A function ``encode(record, header) -> header + Avro body`` for a flat record schema, else None."""
    fields = flat_fields(schema)
    if fields is None:
        return None
    src = _Source()
    src.add(0, "def encode(r, header):")
    parts = ["header"]
    for i, field in enumerate(fields):
        parts.extend(_encode_field(src, f"v{i}", field))
    src.add(1, f"return b''.join(({', '.join(parts)},))")
    return src.build("encode")


def _encode_field(src: _Source, var: str, field: Field) -> list[str]:
    """Emit statements for one field; return the expressions of its encoded parts."""
    default = f", {src.const(field.default)}" if field.has_default else ""
    src.add(1, f"{var} = r.get({field.name!r}{default})")
    kind = field.type.kind
    if kind == "string":
        src.add(1, f"{var} = {var}.encode()")
    if kind == "bytes":
        src.add(1, f"if {var}.__class__ is not bytes: raise TypeError('bytes expected')")
    if kind in ("string", "bytes"):
        return [f"(S[len({var}) + L] if len({var}) < L else W_LONG(len({var})))", var]
    if kind == "nullable":
        inner = field.type.inner
        assert inner is not None
        null_tag, value_tag = _union_tags(field.type)
        strict = _strict_value_expr(src, var, inner)
        return [f"({src.const(null_tag)} if {var} is None else {src.const(value_tag)} + {strict})"]
    return [_value_expr(src, var, field.type)]


def _value_expr(src: _Source, var: str, field_type: FieldType) -> str:
    """Expression encoding a non-string, non-bytes, non-union value held in `var`."""
    kind = field_type.kind
    if kind in ("int", "long"):
        return f"(S[{var} + L] if -L <= {var} < L else W_LONG({var}))"
    if kind == "float":
        return f"PACK_F({var})"
    if kind == "double":
        return f"PACK_D({var})"
    if kind == "boolean":
        return f"BOOL_W[{var}]"
    if kind == "enum":
        table = {symbol: bytes((index << 1,)) for index, symbol in enumerate(field_type.symbols)}
        return f"{src.const(table)}[{var}]"
    return "b''"  # null writes nothing


def _strict_value_expr(src: _Source, var: str, inner: FieldType) -> str:
    # fastavro picks a union branch by validating the value, so only exact types take the fast path.
    checker = src.const(_UNION_CHECKS[inner.kind])
    if inner.kind in ("string", "bytes"):
        return f"{checker}({var})"  # these checkers also encode
    return f"({_value_expr(src, var, inner)} if {checker}({var}) else FAIL())"


def _branch_string(value: Any) -> bytes:
    if value.__class__ is not str:
        raise TypeError("str expected")
    data = value.encode()
    return write_long(len(data)) + data


def _branch_bytes(value: Any) -> bytes:
    if value.__class__ is not bytes:
        raise TypeError("bytes expected")
    return write_long(len(value)) + value


def _is_int32(value: Any) -> bool:
    return value.__class__ is int and -(1 << 31) <= value < 1 << 31


def _is_int64(value: Any) -> bool:
    return value.__class__ is int and -(1 << 63) <= value < 1 << 63


_UNION_CHECKS: dict[str, Callable[[Any], Any]] = {
    "string": _branch_string,
    "bytes": _branch_bytes,
    "int": _is_int32,
    "long": _is_int64,
    "float": lambda v: v.__class__ is float,
    "double": lambda v: v.__class__ is float,
    "boolean": lambda v: v.__class__ is bool,
    "enum": lambda v: v.__class__ is str,
}


def _union_tags(field_type: FieldType) -> tuple[bytes, bytes]:
    null_tag = bytes((field_type.null_index << 1,))
    value_tag = bytes(((1 - field_type.null_index) << 1,))
    return null_tag, value_tag


# ---------------------------------------------------------------------------------------------- decode


@dataclass(frozen=True, slots=True)
class _Plan:
    """How one writer field is read: its writer type, the reader's view of it, and whether it is kept."""

    writer: FieldType
    reader: FieldType
    keep: bool


def compile_decoder(writer_schema: Any, reader_schema: Any = None) -> Decoder | None:
    """A function ``decode(message, start) -> record`` reading an Avro body that must end the message.

    With a reader schema, fields are resolved writer -> reader (dropped fields skipped, new fields
    filled from defaults, enums mapped). Returns None when the schemas are out of scope.
    """
    writer = flat_fields(writer_schema)
    if writer is None:
        return None
    reader = writer if reader_schema is None else flat_fields(reader_schema)
    if reader is None or (reader_schema is not None and not _same_name(writer_schema, reader_schema)):
        return None
    plans = _plans(writer, reader)
    if plans is None:
        return None
    return _build_decoder(writer, reader, plans)


def _same_name(writer_schema: Any, reader_schema: Any) -> bool:
    return record_name(writer_schema) == record_name(reader_schema)


def _plans(writer: list[Field], reader: list[Field]) -> list[_Plan] | None:
    by_name = {f.name: f for f in reader}
    plans = []
    for field in writer:
        target = by_name.get(field.name)
        if target is not None and not _resolvable(field.type, target.type):
            return None
        plans.append(_Plan(field.type, target.type if target else field.type, target is not None))
    written = {f.name for f in writer}
    for field in reader:
        if field.name not in written and not _simple_default(field):
            return None
    return plans


def _resolvable(writer: FieldType, reader: FieldType) -> bool:
    # Only resolutions that keep the value as is (plus enum symbol mapping); promotions go to fastavro.
    if writer.kind != reader.kind:
        return False
    if writer.kind == "nullable":
        assert writer.inner is not None and reader.inner is not None
        return _resolvable(writer.inner, reader.inner)
    return True


# Python types of defaults the generated decoder copies as they are (fastavro does the same for these).
_DEFAULT_TYPES: dict[str, tuple[type, ...]] = {
    "null": (type(None),),
    "nullable": (type(None),),
    "boolean": (bool,),
    "int": (int,),
    "long": (int,),
    "float": (float,),
    "double": (float,),
    "string": (str,),
    "enum": (str,),
}


def _simple_default(field: Field) -> bool:
    allowed = _DEFAULT_TYPES.get(field.type.kind, ())
    return field.has_default and field.default.__class__ in allowed


def _build_decoder(writer: list[Field], reader: list[Field], plans: list[_Plan]) -> Decoder:
    src = _Source()
    src.add(0, "def decode(m, pos):", "    M = len(m)")
    values: dict[str, str] = {}
    for i, (field, plan) in enumerate(zip(writer, plans, strict=True)):
        var = f"v{i}" if plan.keep else "_skip"
        _decode_value(src, 1, var, plan.writer, plan.reader)
        if plan.keep:
            values[field.name] = var
    src.add(1, "if pos != M: raise ValueError('bytes left over')")
    # Key order as fastavro gives it: kept writer fields in writer order, then the reader's new fields.
    items = [f"{name!r}: {var}" for name, var in values.items()]
    items += [f"{f.name!r}: {src.const(f.default)}" for f in reader if f.name not in values]
    src.add(1, "return {" + ", ".join(items) + "}")
    return src.build("decode")


def _decode_value(src: _Source, ind: int, var: str, writer: FieldType, reader: FieldType) -> None:
    kind = writer.kind
    if kind in ("int", "long"):
        _decode_varint(src, ind, var)
    elif kind in ("string", "bytes"):
        _decode_varint(src, ind, "n")
        decode = ".decode()" if kind == "string" else ""
        src.add(ind, "e = pos + n", "if n < 0 or e > M: raise EOFError('body ends early')")
        src.add(ind, f"{var} = m[pos:e]{decode}", "pos = e")
    elif kind in ("float", "double"):
        unpack, size = ("UNPACK_F", 4) if kind == "float" else ("UNPACK_D", 8)
        src.add(ind, f"{var} = {unpack}(m, pos)[0]", f"pos += {size}")
    elif kind == "boolean":
        src.add(ind, f"{var} = BOOL_R[m[pos]]", "pos += 1")
    elif kind == "enum":
        src.add(ind, f"{var} = {src.const(_enum_table(writer, reader))}[m[pos]]", "pos += 1")
    elif kind == "nullable":
        _decode_nullable(src, ind, var, writer, reader)
    else:
        src.add(ind, f"{var} = None")


def _decode_varint(src: _Source, ind: int, var: str) -> None:
    # One byte covers |n| < 64 (lengths, enum-like ints); longer varints run the loop inline.
    src.add(
        ind,
        "b = m[pos]",
        "pos += 1",
        "if b < 128:",
        f"    {var} = (b >> 1) ^ -(b & 1)",
        "else:",
        "    x = b & 127",
        "    s = 7",
        "    while True:",
        "        b = m[pos]",
        "        pos += 1",
        "        x |= (b & 127) << s",
        "        if b < 128: break",
        "        s += 7",
        "    if x >> 64: raise OverflowError('varint longer than 64 bits')",
        f"    {var} = (x >> 1) ^ -(x & 1)",
    )


def _decode_nullable(src: _Source, ind: int, var: str, writer: FieldType, reader: FieldType) -> None:
    assert writer.inner is not None and reader.inner is not None
    null_index = writer.null_index
    src.add(ind, "b = m[pos]", "pos += 1", f"if b == {null_index << 1}:", f"    {var} = None")
    src.add(ind, f"elif b == {(1 - null_index) << 1}:")
    _decode_value(src, ind + 1, var, writer.inner, reader.inner)
    src.add(ind, "else:", "    raise ValueError('bad union branch')")


def _enum_table(writer: FieldType, reader: FieldType) -> dict[int, str]:
    """Varint byte of each writer symbol -> the reader's symbol; unmapped symbols are left out."""
    table = {}
    for index, symbol in enumerate(writer.symbols):
        if symbol in reader.symbols:
            table[index << 1] = symbol
        elif reader.enum_default is not None:
            table[index << 1] = reader.enum_default
    return table


def _fail() -> bytes:
    raise TypeError("value does not fit the union branch")
