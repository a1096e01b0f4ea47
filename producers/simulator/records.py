"""The JSON lines: scans formatted in the ingest contract, malformed records, retried and late deliveries,
all in delivery order; the public `checkin_batches` and `expected_event_count`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, timedelta

import numpy as np
import orjson

from qrtrace.errors import InputError
from qrtrace.producers.simulator.model import (
    _DAY_MS,
    _MIN_MS,
    _VENUE_ID_RANGE,
    BAD_RECORD_KINDS,
    MODES,
    REQUIRED_FIELDS,
    ROLES,
    SimulatedDistrict,
    SimulationConfig,
    _is_weekend,
)
from qrtrace.producers.simulator.scans import _make_scans, _Scans
from qrtrace.producers.simulator.tables import _ACTIVITIES, _BUS
from qrtrace.producers.simulator.visits import _day_visits, _Index, _objects, _span

_LATENCY_MS = 2_000  # ordinary delivery latency
_RETRY_DELAY_MS = (1_000, 180_000)

_LINE = (
    b'{"scan_id":"%b","venue_id":"%b","person_id":"%b","direction":"%b",'
    b'"event_time":"%b+07:00","mode":"%b","scanner_id":"S-%b"}'
)
_LINE_WITH_DECLARATION = _LINE[:-1] + b',"declaration":%b}'


def checkin_batches(district: SimulatedDistrict, batch_size: int = 20_000) -> Iterator[list[bytes]]:
    """JSON lines (no newline) in delivery order, in lists of at most `batch_size`; memory is one day's worth.

    Every good record is delivered at most `max_late_minutes` after its event_time, so a record is never
    more than `max_late_minutes` older (in event time) than any record delivered before it.
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}.")
    return _rebatch(_delivered_days(district), batch_size)


def expected_event_count(district: SimulatedDistrict) -> int:
    """Expected number of records `checkin_batches` yields (an estimate, typically within a few percent)."""
    cfg = district.config
    ix = _Index.build(district)
    role_counts = np.bincount(ix.role, minlength=len(ROLES))
    visits_per_activity = np.array(
        [(2.0 if a.category == _BUS else 1.0) * ix.activity_possible[i] for i, a in enumerate(_ACTIVITIES)]
    )
    guests_by_day = np.zeros(cfg.days)
    for g in district.gatherings:
        if 0 <= g.day < cfg.days:
            guests_by_day[g.day] += g.guests
    day_slot = np.array([a.slot == 1 for a in _ACTIVITIES])
    visits = 0.0
    for day in range(cfg.days):
        table = ix.weekend if _is_weekend(cfg, day) else ix.weekday
        per_role = table @ visits_per_activity
        day_per_role = table @ (visits_per_activity * day_slot)
        # Guests give up their daytime activity for the wedding or funeral.
        guests = min(guests_by_day[day], len(ix.role))
        visits += float(role_counts @ per_role) + guests * (1.0 - float(role_counts @ day_per_role) / len(ix.role))
    scans = visits * (2.0 - cfg.missing_checkout_share + cfg.double_scan_share)
    scans *= 1.0 + cfg.unmatched_checkout_share
    return round(scans * (1.0 + cfg.retry_share + cfg.bad_record_share))


def _uuid4s(rng: np.random.Generator, n: int) -> list[bytes]:
    """n random UUID4 strings from the seeded generator, vectorised (uuid.UUID per event is ~5 us)."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    digits = np.empty((n, 32), dtype=np.uint8)
    digits[:, 0::2] = hexdigits[raw >> 4]
    digits[:, 1::2] = hexdigits[raw & 0x0F]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    text[:, [i for i in range(36) if i not in (8, 13, 18, 23)]] = digits
    return text.view("S36").ravel().tolist()


def _local_times(first_day: date, time_ms: np.ndarray) -> np.ndarray:
    """Local wall-clock ISO text (bytes, no offset): whole seconds, or milliseconds when present.

    Digits are written into a byte matrix; numpy's datetime_as_string was a quarter of the run time.
    """
    n = len(time_ms)
    out = np.empty(n, dtype=object)
    if not n:
        return out
    day = time_ms // _DAY_MS
    first = int(day.min())
    dates = [(first_day + timedelta(days=d)).isoformat().encode() for d in range(first, int(day.max()) + 1)]
    text = np.empty((n, 23), dtype=np.uint8)
    text[:, :10] = np.frombuffer(b"".join(dates), dtype=np.uint8).reshape(-1, 10)[day - first]
    rest = time_ms % _DAY_MS
    # (column, value, digits) of "YYYY-MM-DDTHH:MM:SS.mmm" after the date
    for col, value, width in (
        (11, rest // 3_600_000, 2),
        (14, rest // 60_000 % 60, 2),
        (17, rest // 1_000 % 60, 2),
        (20, rest % 1_000, 3),
    ):
        for k in range(width):
            text[:, col + k] = 48 + value // 10 ** (width - 1 - k) % 10
    text[:, [10, 13, 16, 19]] = np.frombuffer(b"T::.", dtype=np.uint8)
    whole = rest % 1_000 == 0
    out[whole] = np.ascontiguousarray(text[whole, :19]).view("S19").ravel().tolist()
    out[~whole] = text[~whole].view("S23").ravel().tolist()
    return out


def _declarations() -> list[bytes]:
    return [orjson.dumps({"fever": bool(i & 1), "cough": bool(i & 2), "contact_f0": bool(i & 4)}) for i in range(8)]


def _format_lines(ix: _Index, scans: _Scans, times: np.ndarray, scan_ids: list[bytes],
                  zones: list[tuple[str, ...]] | None = None) -> list[bytes]:  # fmt: skip
    declarations = _objects([*_declarations(), b""])  # index -1 -> no declaration
    directions = _objects([b"in", b"out"])
    modes = _objects([m.encode() for m in MODES])
    lines = _plain_lines(ix, scans, times, scan_ids, declarations, directions, modes)
    if scans.zone is None or zones is None:
        return lines
    for i in np.flatnonzero(scans.zone >= 0).tolist():  # the zone's QR names it: the check-in carries it
        zone = zones[int(scans.venue[i])][int(scans.zone[i])]
        lines[i] = lines[i][:-1] + b',"zone":' + orjson.dumps(zone) + b"}"
    return lines


def _plain_lines(ix: _Index, scans: _Scans, times: np.ndarray, scan_ids: list[bytes], declarations: np.ndarray,
                 directions: np.ndarray, modes: np.ndarray) -> list[bytes]:  # fmt: skip
    return [
        _LINE_WITH_DECLARATION % (s, v, p, d, t, m, v, x) if x else _LINE % (s, v, p, d, t, m, v)
        for s, v, p, d, t, m, x in zip(
            scan_ids,
            ix.venue_ids[scans.venue].tolist(),
            ix.person_ids[scans.person].tolist(),
            directions[scans.direction].tolist(),
            times.tolist(),
            modes[scans.mode].tolist(),
            declarations[scans.declaration].tolist(),
            strict=True,
        )
    ]


def _bad_record(kind: str, record: dict[str, object], epoch_s: float, rng: np.random.Generator) -> bytes:
    """One record that breaks the contract in the way `kind` names."""

    def pick(options: tuple[object, ...]) -> object:
        return options[int(rng.integers(0, len(options)))]

    local = str(record["event_time"])[:-6]  # without the +07:00
    if kind == "malformed_json":
        full = orjson.dumps(record)
        return full[: int(rng.integers(1, len(full) - 1))]  # a cut-off line
    if kind == "missing_field":
        del record[str(pick(REQUIRED_FIELDS))]
    elif kind == "bad_direction":
        record["direction"] = pick(("enter", "exit", "", "vào", "ra", "checkin"))
    elif kind == "bad_time":
        day, clock = local[:10], local[11:19]
        record["event_time"] = pick(
            (f"{day[8:10]}/{day[5:7]}/{day[:4]} {clock}", f"{day}T25:61:00+07:00", "hôm qua", "")
        )
    elif kind == "offsetless_time":
        record["event_time"] = pick((local, local.replace("T", " ")))
    elif kind == "unknown_venue":
        venue_id = f"VN{int(rng.integers(_VENUE_ID_RANGE[1], 10_000_000))}"
        record["venue_id"] = venue_id
        record["scanner_id"] = f"S-{venue_id}"
    elif kind == "wrong_type":
        field_name = str(pick(("person_id", "venue_id", "event_time", "direction", "declaration", "scan_id")))
        person = str(record["person_id"])
        record[field_name] = {
            "person_id": int(person[3:], 16) if person.startswith("QR-") else int(person),
            "venue_id": int(str(record["venue_id"])[2:]),
            "event_time": round(epoch_s),
            "direction": True,
            "declaration": "không sốt",
            "scan_id": None,
        }[field_name]
    elif kind == "bad_mode":
        record["mode"] = pick(("bluetooth", "zalo", "", "QR"))
    return orjson.dumps(record)


def _bad_records(
    ix: _Index,
    config: SimulationConfig,
    scans: _Scans,
    times: np.ndarray,
    base: np.ndarray,
    rng: np.random.Generator,
) -> list[bytes]:
    scan_ids = _uuid4s(rng, len(base))
    kinds = rng.integers(0, len(BAD_RECORD_KINDS), size=len(base))
    assert config.start is not None
    epoch = config.start.timestamp()
    out = []
    for i, b, kind in zip(range(len(base)), base.tolist(), kinds.tolist(), strict=True):
        venue_id = ix.venue_ids[scans.venue[b]].decode()
        record: dict[str, object] = {
            "scan_id": scan_ids[i].decode(),
            "venue_id": venue_id,
            "person_id": ix.person_ids[scans.person[b]].decode(),
            "direction": ("in", "out")[scans.direction[b]],
            "event_time": times[b].decode() + "+07:00",
            "mode": MODES[scans.mode[b]],
            "scanner_id": f"S-{venue_id}",
        }
        out.append(_bad_record(BAD_RECORD_KINDS[kind], record, epoch + scans.time[b] / 1000, rng))
    return out


def _day_records(
    ix: _Index, config: SimulationConfig, scans: _Scans, rng: np.random.Generator,
    zones: list[tuple[str, ...]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(delivery time, line) for every record of a day: scans, their retries, and bad records."""
    m = len(scans.time)
    times = _local_times(config.first_day, scans.time)
    lines = _format_lines(ix, scans, times, _uuid4s(rng, m), zones)
    max_late = config.max_late_minutes * _MIN_MS
    late = rng.random(m) < config.late_share
    delay = np.where(
        late,
        _span(rng, min(_MIN_MS, max_late), max_late, m),
        _span(rng, 0, min(_LATENCY_MS, max_late), m),
    )
    delivery = scans.time + delay.astype(np.int64)
    # A retry repeats the bytes a little later, still within the lateness bound.
    retry = np.flatnonzero(rng.random(m) < config.retry_share)
    retry_at = np.maximum(
        delivery[retry],
        np.minimum(
            delivery[retry] + _span(rng, *_RETRY_DELAY_MS, len(retry)).astype(np.int64),
            scans.time[retry] + max_late,
        ),
    )
    k_bad = int(rng.binomial(m, config.bad_record_share)) if m else 0
    base = rng.integers(0, max(m, 1), size=k_bad)
    bad = _bad_records(ix, config, scans, times, base, rng)
    bad_at = delivery[base] + rng.integers(0, 1000, size=k_bad)
    keys = np.concatenate([delivery, retry_at, bad_at])
    all_lines = _objects(lines + [lines[i] for i in retry.tolist()] + bad)
    return keys, all_lines


def _delivered_days(district: SimulatedDistrict) -> Iterator[list[bytes]]:
    """One list per simulated day in delivery order; late records cross midnight into the next list."""
    config = district.config
    ix = _Index.build(district)
    n_venues = len(district.venues)
    seen = np.empty(0, dtype=np.int64)  # (person, venue) pairs with any event so far
    pending_keys = np.empty(0, dtype=np.int64)
    pending = _objects([])
    zones = [v.zones for v in district.venues] if any(v.zones for v in district.venues) else None
    zone_counts = np.array([len(z) for z in zones], dtype=np.int64) if zones is not None else None
    for day in range(config.days):
        rng = np.random.default_rng([config.seed, 2, day])  # each day its own stream
        visits = _day_visits(ix, config, day, rng)
        seen = np.union1d(seen, visits.person * n_venues + visits.venue)
        scans = _make_scans(ix, config, visits, seen, day, rng, zone_counts)
        keys, lines = _day_records(ix, config, scans, rng, zones)
        keys = np.concatenate([pending_keys, keys])
        lines = np.concatenate([pending, lines])
        order = np.argsort(keys, kind="stable")
        keys, lines = keys[order], lines[order]
        cut = len(keys) if day == config.days - 1 else int(np.searchsorted(keys, (day + 1) * _DAY_MS))
        yield lines[:cut].tolist()
        pending_keys, pending = keys[cut:], lines[cut:]


def _rebatch(chunks: Iterable[list[bytes]], size: int) -> Iterator[list[bytes]]:
    buffer: list[bytes] = []
    for chunk in chunks:
        buffer.extend(chunk)
        if len(buffer) >= size:
            full = len(buffer) - len(buffer) % size
            for i in range(0, full, size):
                yield buffer[i : i + size]
            buffer = buffer[full:]
    if buffer:
        yield buffer
