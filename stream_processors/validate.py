"""Validate raw check-in records against the ingest contract (docs/design.md). Pure: no keys, no I/O.

Column-wise over a batch (Arrow compute kernels), not record by record: every check is one kernel
call over the batch, and only refused records are looked at one by one, to explain why.
The result keeps the raw identifier: the edge pseudonymises it before anything leaves the process.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from qrtrace.domain.zones import MAX_ZONE_LENGTH

REQUIRED_FIELDS = ("scan_id", "venue_id", "person_id", "direction", "event_time", "mode", "scanner_id")
MODES = ("venue_qr", "personal_qr", "manual")
MAX_FIELD_LENGTH = 128
MAX_RECORD_BYTES = 16_384
# ISO 8601 with seconds and an explicit offset; the offset is what makes an instant unambiguous.
ISO_WITH_OFFSET = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)$"


@dataclass(frozen=True, slots=True)
class EventTimeWindow:
    """Which event times a receiver accepts, relative to its clock: at most `max_age_us` old (the
    retention period: older history would be dropped at once) and at most `max_future_us` ahead."""

    max_age_us: int
    max_future_us: int

    def bounds(self, received_at_us: int) -> tuple[int, int]:
        return received_at_us - self.max_age_us, received_at_us + self.max_future_us


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why record `index` of the batch was refused; `record` is the parsed object if there was one."""

    index: int
    reason: str
    detail: str
    record: dict | None


@dataclass(frozen=True, slots=True)
class ValidRecords:
    """Columns of the records that passed, in input order (`index` points back into the batch)."""

    index: np.ndarray  # int64
    scan_id: np.ndarray  # object[str]
    venue_id: np.ndarray
    person_id: np.ndarray
    is_in: np.ndarray  # bool
    event_time_us: np.ndarray  # int64 UTC microseconds
    offset_minutes: np.ndarray  # int16
    mode: np.ndarray
    scanner_id: np.ndarray
    declaration: np.ndarray  # object[str]: canonical JSON, "" when absent
    zone: np.ndarray  # object[str]: the venue's zone, "" when absent

    def __len__(self) -> int:
        return len(self.index)


def parse_lines(lines: Sequence[bytes]) -> list[dict | Rejection]:
    """JSON-decode a batch line by line (measured faster than one call over the joined batch)."""
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
        if isinstance(p, dict) and isinstance(p.get("declaration"), dict) and _beyond_64_bits(p["declaration"], line):
            out.append(Rejection(i, "number_out_of_range", "the declaration holds a whole number beyond 64 bits", p))
            continue
        out.append(p if isinstance(p, dict) else _not_object(i))
    return out


def _beyond_64_bits(decl: dict, line: bytes) -> bool:
    """orjson reads a whole number beyond 64 bits as an approximate float; such a declaration value is data we
    cannot keep exactly. Only a record with a huge integral float is decoded again (stdlib json keeps ints)."""
    if not any(isinstance(v, float) and v.is_integer() and abs(v) >= 2**63 for v in decl.values()):  # candidates
        return False
    import json

    try:
        exact = json.loads(line).get("declaration") or {}
    except ValueError:  # stdlib json is laxer than orjson in general, but never let the check itself fail a batch
        return False
    return any(isinstance(v, int) and not isinstance(v, bool) and not -(2**63) <= v < 2**64 for v in exact.values())


def _not_object(i: int) -> Rejection:
    return Rejection(i, "not_an_object", "a record must be a JSON object", None)


class Validator:
    """The contract's checks over whole batches, against the registered venues.

    `known_venues` is the venue ids, or a mapping venue id -> its zones: a check-in's optional `zone` must be
    one its venue registered (a venue without zones has none, so any zone there is `unknown_zone` too: a
    zone's QR exists only once the zone is registered). Without a mapping, no check-in may name a zone."""

    def __init__(
        self, known_venues: Collection[str] | Mapping[str, Collection[str]], window: EventTimeWindow | None = None
    ) -> None:
        self._venues = pa.array(sorted(known_venues), pa.string())
        zones = known_venues if isinstance(known_venues, Mapping) else {}
        self._zones: dict[str, frozenset[str]] = {v: frozenset(z) for v, z in zones.items() if z}
        self._modes = pa.array(MODES, pa.string())
        self._window = window

    def validate(
        self, parsed: Sequence[dict | Rejection], received_at_us: int | None = None
    ) -> tuple[ValidRecords, list[Rejection]]:
        """Split a parsed batch into valid columns and rejections, each with its reason. With a window,
        event times too old or too far ahead of `received_at_us` are refused too."""
        rejected = [p for p in parsed if isinstance(p, Rejection)]
        index = np.array([i for i, p in enumerate(parsed) if not isinstance(p, Rejection)], dtype=np.int64)
        records: list[dict] = [parsed[i] for i in index.tolist()]  # type: ignore[misc]
        reason = np.full(len(records), None, dtype=object)

        def refuse(mask: pa.Array | np.ndarray, why: str) -> None:
            m = mask.to_numpy(zero_copy_only=False) if isinstance(mask, pa.Array) else mask
            reason[np.asarray(m, dtype=bool) & (reason == None)] = why  # noqa: E711 - elementwise

        cols = {name: _string_column(records, name) for name in REQUIRED_FIELDS}
        for name in REQUIRED_FIELDS:  # field by field, in contract order, as a reader would check
            col, wrong_type = cols[name]
            empty = pc.fill_null(pc.equal(col, ""), True).to_numpy(zero_copy_only=False)
            refuse(empty & ~wrong_type, "missing_field")  # a non-string is nulled: wrong type, not missing
            refuse(wrong_type, "wrong_type")
            refuse(pc.fill_null(pc.greater(pc.utf8_length(col), MAX_FIELD_LENGTH), False), "field_too_long")
        direction = cols["direction"][0]
        is_in = pc.fill_null(pc.equal(direction, "in"), False)
        refuse(pc.invert(pc.or_(is_in, pc.fill_null(pc.equal(direction, "out"), False))), "bad_direction")
        refuse(pc.invert(pc.is_in(cols["mode"][0], value_set=self._modes)), "bad_mode")
        times = cols["event_time"][0]
        t_us, t_ok = _parse_times(times)
        refuse(~t_ok, "bad_event_time")
        if self._window is not None and received_at_us is not None:
            oldest, latest = self._window.bounds(received_at_us)
            refuse(t_ok & (t_us < oldest), "event_time_too_old")
            refuse(t_ok & (t_us > latest), "event_time_in_future")
        refuse(pc.invert(pc.is_in(cols["venue_id"][0], value_set=self._venues)), "unknown_venue")
        zone = self._zone_column(records, refuse, reason, cols["venue_id"][0])
        declaration = np.full(len(records), "", dtype=object)
        for i in np.flatnonzero(reason == None).tolist():  # noqa: E711
            decl = records[i].get("declaration")
            if decl is None:
                continue
            if isinstance(decl, dict):
                declaration[i] = orjson.dumps(decl, option=orjson.OPT_SORT_KEYS).decode()
            else:
                reason[i] = "wrong_type"
        ok = reason == None  # noqa: E711
        for i in np.flatnonzero(~ok).tolist():
            why = _explain(reason[i], records[i], self._window)
            rejected.append(Rejection(int(index[i]), reason[i], why, records[i]))
        rejected.sort(key=lambda r: r.index)
        keep = np.flatnonzero(ok)
        col = lambda name: _objects(cols[name][0])[keep]  # noqa: E731
        valid = ValidRecords(
            index=index[keep],
            scan_id=col("scan_id"),
            venue_id=col("venue_id"),
            person_id=col("person_id"),
            is_in=is_in.to_numpy(zero_copy_only=False)[keep],
            event_time_us=t_us[keep],
            offset_minutes=_offset_minutes(times)[keep],
            mode=col("mode"),
            scanner_id=col("scanner_id"),
            declaration=declaration[keep],
            zone=zone[keep],
        )
        return valid, rejected

    def _zone_column(self, records: list[dict], refuse, reason: np.ndarray, venues: pa.Array) -> np.ndarray:  # type: ignore[no-untyped-def]
        """The optional `zone` ("" when absent or null): a string, not too long, one of its venue's zones."""
        out = np.full(len(records), "", dtype=object)
        if not any("zone" in r for r in records):  # the common case: one pass, no columns built
            return out
        col, wrong = _string_column(records, "zone")
        refuse(wrong, "wrong_type")
        refuse(pc.fill_null(pc.greater(pc.utf8_length(col), MAX_ZONE_LENGTH), False), "field_too_long")
        values = _objects(col)
        named = np.flatnonzero(np.array([isinstance(z, str) and z != "" for z in values.tolist()], dtype=bool)
                               & (reason == None))  # noqa: E711  # fmt: skip
        venue_ids = _objects(venues)
        for i in named.tolist():
            zone = unicodedata.normalize("NFC", values[i])  # registered zones are NFC: so is what a scanner sends
            if zone in self._zones.get(venue_ids[i], ()):
                out[i] = zone
            else:
                reason[i] = "unknown_zone"
        return out


def _string_column(records: list[dict], name: str) -> tuple[pa.Array, np.ndarray]:
    """The field as an Arrow string column (non-strings become null) and a mask of non-string values."""
    values = [r.get(name) for r in records]
    try:
        return pa.array(values, pa.string()), np.zeros(len(values), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Some value is not a string: find which (a plain comprehension beats numpy ufuncs on objects here).
        wrong = np.array([type(v) is not str and v is not None for v in values], dtype=bool)
        cleaned = [None if w else v for v, w in zip(values, wrong.tolist(), strict=True)]
        return pa.array(cleaned, pa.string()), wrong


def _parse_times(times: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """UTC microseconds and a validity mask; shape by regex, value by Arrow's ISO 8601 parser."""
    shaped = pc.fill_null(pc.match_substring_regex(times, ISO_WITH_OFFSET), False).to_numpy(zero_copy_only=False)
    us = np.zeros(len(times), dtype=np.int64)
    idx = np.flatnonzero(shaped)
    candidates = times.take(pa.array(idx))
    try:
        parsed = pc.cast(candidates, pa.timestamp("us", tz="UTC"))
        us[idx] = parsed.cast(pa.int64()).to_numpy(zero_copy_only=False)
        return us, shaped
    except pa.ArrowInvalid:  # a well-shaped but impossible date (month 13) in the batch: coerce to NaT
        coerced = pd.to_datetime(
            pd.Series(candidates.to_pylist(), dtype=object), format="ISO8601", utc=True, errors="coerce"
        )
        good = coerced.notna().to_numpy()
        us[idx[good]] = pd.DatetimeIndex(coerced[good]).as_unit("us").asi8
        ok = np.zeros(len(times), dtype=bool)
        ok[idx[good]] = True
        return us, ok


def _offset_minutes(times: pa.Array) -> np.ndarray:
    """The offset the scanner wrote, in minutes ('+07:00' -> 420); few distinct values per batch."""
    suffix = _objects(pc.utf8_slice_codeunits(times, -6))
    out = np.zeros(len(suffix), dtype=np.int16)
    for value in set(suffix.tolist()):
        if isinstance(value, str) and len(value) == 6 and value[0] in "+-" and value[3] == ":":
            try:
                minutes = int(value[1:3]) * 60 + int(value[4:6])
            except ValueError:
                continue
            out[suffix == value] = minutes if value[0] == "+" else -minutes
    return out


def _objects(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)


def _explain(reason: str, record: dict, window: EventTimeWindow | None = None) -> str:
    """A sentence for one refused record (only refused records get here)."""
    if reason in ("missing_field", "wrong_type", "field_too_long"):
        for name in (*REQUIRED_FIELDS, "zone"):
            value = record.get(name)
            if (value is None or value == "") and name != "zone":
                return f"field {name} is missing or empty"
            if value is None:
                continue
            if not isinstance(value, str):
                return f"field {name} must be a string, got {type(value).__name__}"
            longest = MAX_ZONE_LENGTH if name == "zone" else MAX_FIELD_LENGTH
            if len(value) > longest:
                return f"field {name} is longer than {longest} characters"
        return "field declaration must be an object"
    if reason == "bad_direction":
        return f"direction must be 'in' or 'out', got {record.get('direction')!r}"
    if reason == "bad_mode":
        return f"mode must be one of {', '.join(MODES)}, got {record.get('mode')!r}"
    if reason == "bad_event_time":
        return f"event_time {record.get('event_time')!r} is not ISO 8601 with a UTC offset"
    if reason == "event_time_too_old" and window is not None:
        days = window.max_age_us // 86_400_000_000
        return f"event_time {record.get('event_time')!r} is more than {days} days before it was received"
    if reason == "event_time_in_future" and window is not None:
        minutes = window.max_future_us // 60_000_000
        return f"event_time {record.get('event_time')!r} is more than {minutes} minutes ahead of the receiving clock"
    if reason == "unknown_venue":
        return f"venue {record.get('venue_id')} is not registered"
    if reason == "unknown_zone":
        return f"venue {record.get('venue_id')} has no zone {str(record.get('zone'))[:MAX_ZONE_LENGTH]!r}"
    return reason
