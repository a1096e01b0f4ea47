"""Confluent wire format: magic byte 0, 4-byte big-endian schema id, then the Avro binary body.

Batch-oriented because this is the ingest hot path: schemas are parsed once and codecs are cached per
schema, so the per-message work is one call of a generated codec (see fastcodec) or, for schemas out
of its scope, one fastavro call. Whenever the generated codec refuses something, fastavro redoes that
one message and decides, so both paths give the same answers and the same errors.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import fastavro

from qrtrace.errors import InputError, QrtraceError
from qrtrace.schemas.fastcodec import compile_decoder, compile_encoder

MAGIC_BYTE = 0
HEADER_SIZE = 5
_CACHE_LIMIT = 256  # compiled codecs kept; schemas are few, this only bounds careless callers


class WireFormatError(QrtraceError):
    """A message is not a Confluent-framed Avro record that this registry can read."""


class SchemaLookup(Protocol):
    """What decoding needs from a registry (SchemaRegistry, or an adapter for a remote one)."""

    def schema_by_id(self, schema_id: int) -> Any: ...


def header(schema_id: int) -> bytes:
    """The 5-byte Confluent header for `schema_id`."""
    if not 0 <= schema_id < 1 << 32:
        raise InputError(f"Schema id {schema_id} does not fit in the 4-byte wire header.")
    return bytes((MAGIC_BYTE,)) + schema_id.to_bytes(4, "big")


def schema_id_of(message: bytes) -> int:
    """The schema id in a message's header (WireFormatError if there is no valid header)."""
    _check_header(message, None)
    return int.from_bytes(message[1:HEADER_SIZE], "big")


# ---------------------------------------------------------------------------------------------- encode


@dataclass(slots=True)
class _Encoder:
    schema_id: int
    source: Any  # the schema object the caller passed; kept so the cache can check identity
    parsed: Any
    header: bytes
    fast: Callable[[dict[str, Any], bytes], bytes] | None

    def careful(self, index: int | None, record: dict[str, Any]) -> bytes:
        """Encode one record with fastavro; a record it refuses becomes an InputError."""
        buf = io.BytesIO()  # a fresh buffer per call keeps this safe across threads
        buf.write(self.header)
        try:
            fastavro.schemaless_writer(buf, self.parsed, record)
        except Exception as exc:  # fastavro raises assorted types for a bad record
            where = _where(index, "Record")
            raise InputError(f"{where} cannot be encoded with schema id {self.schema_id}: {_reason(exc)}.") from exc
        return buf.getvalue()


_encoders: dict[tuple[int, int], _Encoder] = {}


def _encoder(schema_id: int, schema: Any) -> _Encoder:
    # Keyed by object identity; the entry keeps the object alive, so its id cannot be reused meanwhile.
    key = (schema_id, id(schema))
    cached = _encoders.get(key)
    if cached is not None and cached.source is schema:
        return cached
    try:
        parsed = fastavro.parse_schema(schema)
    except Exception as exc:
        raise InputError(f"The schema given for id {schema_id} is not valid Avro: {_reason(exc)}.") from exc
    encoder = _Encoder(schema_id, schema, parsed, header(schema_id), compile_encoder(parsed))
    _remember(_encoders, key, encoder)
    return encoder


def encode_batch(schema_id: int, schema: Any, records: Iterable[dict[str, Any]]) -> list[bytes]:
    """Encode records written with `schema` (registered as `schema_id`) as Confluent-framed messages.

    A record that does not fit the schema raises InputError naming its index in the batch.
    """
    encoder = _encoder(schema_id, schema)
    records = records if isinstance(records, list) else list(records)
    fast, head = encoder.fast, encoder.header
    if fast is not None:
        try:
            return [fast(r, head) for r in records]
        except Exception:  # redo the batch record by record to find and judge the odd one
            pass
    return [_encode_one(encoder, i, r) for i, r in enumerate(records)]


def encode(schema_id: int, schema: Any, record: dict[str, Any]) -> bytes:
    """Encode one record as a Confluent-framed message."""
    return _encode_one(_encoder(schema_id, schema), None, record)


def _encode_one(encoder: _Encoder, index: int | None, record: dict[str, Any]) -> bytes:
    if encoder.fast is not None:
        try:
            return encoder.fast(record, encoder.header)
        except Exception:  # fastavro decides what the generated codec refused
            pass
    return encoder.careful(index, record)


# ---------------------------------------------------------------------------------------------- decode


@dataclass(slots=True)
class _Decoder:
    schema_id: int
    writer: Any
    reader: Any
    fast: Callable[[bytes, int], dict[str, Any]] | None

    def __post_init__(self) -> None:
        if self.fast is None:  # schema out of the generated codec's scope: fastavro all the way
            self.fast = self._fastavro

    def _fastavro(self, message: bytes, _start: int) -> dict[str, Any]:
        return self.careful(None, message)

    def careful(self, index: int | None, message: bytes) -> dict[str, Any]:
        """Decode one message with fastavro; a body it cannot read becomes a WireFormatError."""
        buf = io.BytesIO(message)
        buf.seek(HEADER_SIZE)
        try:
            record = fastavro.schemaless_reader(buf, self.writer, self.reader)
        except Exception as exc:  # truncated or garbled bodies raise assorted types
            raise WireFormatError(
                f"{_where(index, 'Message')} (schema id {self.schema_id}) cannot be decoded: {_reason(exc)}."
            ) from exc
        left = len(message) - buf.tell()
        if left:
            raise WireFormatError(
                f"{_where(index, 'Message')} (schema id {self.schema_id}) has {left} bytes left over "
                "after the record, so it was not written with that schema."
            )
        return record


_decoders: dict[tuple[int, int, int], tuple[Any, Any, _Decoder]] = {}
_readers: dict[int, tuple[Any, Any]] = {}


def _parsed_reader(reader_schema: Any) -> Any:
    if reader_schema is None:
        return None
    cached = _readers.get(id(reader_schema))
    if cached is not None and cached[0] is reader_schema:
        return cached[1]
    try:
        parsed = fastavro.parse_schema(reader_schema)
    except Exception as exc:
        raise InputError(f"The reader schema is not valid Avro: {_reason(exc)}.") from exc
    _remember(_readers, id(reader_schema), (reader_schema, parsed))
    return parsed


def _decoder_for(schema_id: int, writer: Any, reader: Any) -> _Decoder:
    # Keyed by object identity (registries hand out the same parsed object each time); the entry
    # keeps both objects alive, so an id cannot be reused while its entry exists.
    key = (schema_id, id(writer), id(reader))
    cached = _decoders.get(key)
    if cached is not None and cached[0] is writer and cached[1] is reader:
        return cached[2]
    decoder = _Decoder(schema_id, writer, reader, compile_decoder(writer, reader))
    _remember(_decoders, key, (writer, reader, decoder))
    return decoder


class _Session:
    """Decoders for one batch, found by the message's 5 header bytes (one dict lookup per message)."""

    def __init__(self, registry: SchemaLookup, reader_schema: Any) -> None:
        self._registry = registry
        self._reader = _parsed_reader(reader_schema)
        self.by_header: dict[bytes, _Decoder] = {}

    def resolve(self, index: int | None, message: bytes) -> _Decoder:
        """The decoder for a message whose header has not been seen in this batch yet."""
        _check_header(message, index)
        schema_id = int.from_bytes(message[1:HEADER_SIZE], "big")
        try:
            writer = self._registry.schema_by_id(schema_id)
        except (QrtraceError, LookupError) as exc:
            raise WireFormatError(
                f"{_where(index, 'Message')} names schema id {schema_id}, which the registry does not know."
            ) from exc
        decoder = _decoder_for(schema_id, writer, self._reader)
        self.by_header[message[:HEADER_SIZE]] = decoder
        return decoder


def decode_batch(registry: SchemaLookup, messages: Iterable[bytes], reader_schema: Any = None) -> list[dict[str, Any]]:
    """Decode Confluent-framed messages, looking writer schemas up by id in `registry`.

    With `reader_schema`, every record is resolved to it (e.g. v1 check-ins read with the v2 schema
    get ``declaration_sealed=None``). A bad message raises WireFormatError naming its index.
    """
    session = _Session(registry, reader_schema)
    lookup = session.by_header.get
    out: list[dict[str, Any]] = []
    append = out.append
    for i, message in enumerate(messages):
        if message.__class__ is not bytes:
            message = bytes(message)
        decoder = lookup(message[:HEADER_SIZE]) or session.resolve(i, message)
        try:
            append(decoder.fast(message, HEADER_SIZE))
        except Exception:  # fastavro decides what the generated codec refused, naming the message
            append(decoder.careful(i, message))
    return out


def decode(registry: SchemaLookup, message: bytes, reader_schema: Any = None) -> dict[str, Any]:
    """Decode one Confluent-framed message."""
    if message.__class__ is not bytes:
        message = bytes(message)
    session = _Session(registry, reader_schema)
    decoder = session.resolve(None, message)
    try:
        return decoder.fast(message, HEADER_SIZE)
    except Exception:
        return decoder.careful(None, message)


# ---------------------------------------------------------------------------------------------- helpers


def _check_header(message: bytes, index: int | None) -> None:
    if len(message) < HEADER_SIZE:
        raise WireFormatError(
            f"{_where(index, 'Message')} is {len(message)} bytes long, "
            f"shorter than the {HEADER_SIZE}-byte Confluent header."
        )
    if message[0] != MAGIC_BYTE:
        raise WireFormatError(
            f"{_where(index, 'Message')} starts with byte 0x{message[0]:02x}, not the Confluent magic byte 0x00."
        )


def _where(index: int | None, noun: str) -> str:
    return f"The {noun.lower()}" if index is None else f"{noun} {index} of the batch"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, EOFError | IndexError):
        return "the body ends before the record is complete"
    text = str(exc).rstrip(".")
    return text or type(exc).__name__


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value
