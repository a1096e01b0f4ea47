"""Validate raw check-in records against the ingest contract (DESIGN.md). Pure: no keys, no I/O.

The result keeps the raw identifier: the edge pseudonymises it before anything leaves the process.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import orjson

REQUIRED_FIELDS = ("scan_id", "venue_id", "person_id", "direction", "event_time", "mode", "scanner_id")
DIRECTIONS = {"in": True, "out": False}
MODES = frozenset({"venue_qr", "personal_qr", "manual"})
MAX_FIELD_LENGTH = 128
MAX_RECORD_BYTES = 16_384


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why record `index` of the batch was refused; `record` is the parsed object if there was one."""

    index: int
    reason: str
    detail: str
    record: dict | None


@dataclass(slots=True)
class ValidRecords:
    """Columns of the records that passed, in input order (`index` points back into the batch)."""

    index: list[int] = field(default_factory=list)
    scan_id: list[str] = field(default_factory=list)
    venue_id: list[str] = field(default_factory=list)
    person_id: list[str] = field(default_factory=list)
    is_in: list[bool] = field(default_factory=list)
    event_time_us: list[int] = field(default_factory=list)
    offset_minutes: list[int] = field(default_factory=list)
    mode: list[str] = field(default_factory=list)
    scanner_id: list[str] = field(default_factory=list)
    declaration: list[str] = field(default_factory=list)  # canonical JSON, "" when absent

    def __len__(self) -> int:
        return len(self.index)


def parse_lines(lines: Sequence[bytes]) -> list[dict | Rejection]:
    """JSON-decode a batch; one call for the whole batch when every line is valid, per line otherwise."""
    try:
        if max(map(len, lines), default=0) > MAX_RECORD_BYTES:
            raise orjson.JSONDecodeError("oversized", "", 0)  # take the per-line path, which names them
        parsed = orjson.loads(b"[" + b",".join(lines) + b"]")
        if len(parsed) == len(lines):
            return [p if isinstance(p, dict) else Rejection(i, "not_an_object", "a record must be a JSON object", None)
                    for i, p in enumerate(parsed)]
    except orjson.JSONDecodeError:
        pass
    out: list[dict | Rejection] = []
    for i, line in enumerate(lines):
        if len(line) > MAX_RECORD_BYTES:
            out.append(Rejection(i, "record_too_large", f"a record may be at most {MAX_RECORD_BYTES} bytes", None))
            continue
        try:
            p = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            out.append(Rejection(i, "malformed_json", f"not valid JSON: {exc}", None))
            continue
        out.append(p if isinstance(p, dict) else Rejection(i, "not_an_object", "a record must be a JSON object", None))
    return out


def _check(rec: dict, known_venues: Collection[str]) -> tuple[str, str] | tuple[bool, int, int, str]:
    """(reason, detail) for a bad record, else (is_in, event_time_us, offset_minutes, declaration_json)."""
    for name in REQUIRED_FIELDS:
        value = rec.get(name)
        if value is None or value == "":
            return "missing_field", f"field {name} is missing or empty"
        if not isinstance(value, str):
            return "wrong_type", f"field {name} must be a string, got {type(value).__name__}"
        if len(value) > MAX_FIELD_LENGTH:
            return "field_too_long", f"field {name} is longer than {MAX_FIELD_LENGTH} characters"
    is_in = DIRECTIONS.get(rec["direction"])
    if is_in is None:
        return "bad_direction", f"direction must be 'in' or 'out', got {rec['direction']!r}"
    if rec["mode"] not in MODES:
        return "bad_mode", f"mode must be one of {', '.join(sorted(MODES))}, got {rec['mode']!r}"
    try:
        when = datetime.fromisoformat(rec["event_time"])
    except ValueError:
        return "bad_event_time", f"event_time {rec['event_time']!r} is not ISO 8601"
    offset = when.utcoffset()
    if offset is None:
        return "bad_event_time", f"event_time {rec['event_time']!r} has no UTC offset"
    if rec["venue_id"] not in known_venues:
        return "unknown_venue", f"venue {rec['venue_id']} is not registered"
    declaration = rec.get("declaration")
    if declaration is not None and not isinstance(declaration, dict):
        return "wrong_type", "field declaration must be an object"
    decl = orjson.dumps(declaration, option=orjson.OPT_SORT_KEYS).decode() if declaration else ""
    return is_in, round(when.timestamp() * 1_000_000), int(offset.total_seconds()) // 60, decl


def validate_records(parsed: Sequence[dict | Rejection], known_venues: Collection[str]) -> tuple[ValidRecords, list[Rejection]]:
    """Split a parsed batch into valid columns and rejections with their reasons."""
    valid = ValidRecords()
    rejected: list[Rejection] = []
    for i, rec in enumerate(parsed):
        if isinstance(rec, Rejection):
            rejected.append(rec)
            continue
        result = _check(rec, known_venues)
        if len(result) == 2:
            rejected.append(Rejection(i, result[0], result[1], rec))  # type: ignore[arg-type]
            continue
        is_in, t_us, offset, decl = result  # type: ignore[misc]
        valid.index.append(i)
        valid.scan_id.append(rec["scan_id"])
        valid.venue_id.append(rec["venue_id"])
        valid.person_id.append(rec["person_id"])
        valid.is_in.append(is_in)
        valid.event_time_us.append(t_us)
        valid.offset_minutes.append(offset)
        valid.mode.append(rec["mode"])
        valid.scanner_id.append(rec["scanner_id"])
        valid.declaration.append(decl)
    return valid, rejected

