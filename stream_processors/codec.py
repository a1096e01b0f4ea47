"""Columnar batches <-> the Avro records that travel on Kafka. Pure: no client, no I/O."""

from __future__ import annotations

import base64
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qrtrace.errors import QrtraceError
from qrtrace.schemas.registry import CHECKIN_BUNDLES_SUBJECT, CHECKINS_SUBJECT
from qrtrace.schemas.wire import HEADER_SIZE, WireFormatError, decode_batch, schema_id_of
from qrtrace.stream_processors.batch import CheckinBatch, DeadLetter

MAX_BUNDLE = 1_000  # check-ins per bundle: ~200 KB at most, far below Kafka's 1 MB message limit
BUNDLE_NAME = "vn.qrtrace.CheckinBundle"
SEQ_PER_MESSAGE = 1 << 16  # arrival order of a bundled check-in: offset * SEQ_PER_MESSAGE + its index


def checkin_records(batch: CheckinBatch) -> list[dict]:
    """One Avro `Checkin` (v2) record per row."""
    return [
        {
            "scan_id": s, "venue_id": v, "person": p, "direction": "in" if i else "out", "event_time_us": t,
            "offset_minutes": o, "mode": m, "scanner_id": sc,
            "declaration_sealed": base64.b64decode(d) if d else None,
        }
        for s, v, p, i, t, o, m, sc, d in zip(
            batch.scan_id.tolist(), batch.venue_id.tolist(), batch.person.tolist(), batch.is_in.tolist(),
            batch.event_time_us.tolist(), batch.offset_minutes.tolist(), batch.mode.tolist(),
            batch.scanner_id.tolist(), batch.declaration_sealed.tolist(), strict=True,
        )
    ]  # fmt: skip


def checkin_bundles(batch: CheckinBatch) -> tuple[list[str], list[dict]]:
    """Group a batch into Avro `CheckinBundle` records, one venue each, arrival order kept inside.

    Returns the venue (the message key) and the record of each bundle."""
    records = checkin_records(batch)
    order = np.argsort(batch.venue_id.astype(str), kind="stable")  # stable: arrival order within a venue
    venues = batch.venue_id[order]
    cuts = [*np.flatnonzero(np.r_[True, venues[1:] != venues[:-1]]).tolist(), len(order)]
    keys, bundles = [], []
    for lo, hi in itertools.pairwise(cuts):
        for start in range(lo, hi, MAX_BUNDLE):
            rows = order[start : min(hi, start + MAX_BUNDLE)].tolist()
            keys.append(str(venues[lo]))
            bundles.append({"venue_id": keys[-1], "checkins": [records[i] for i in rows]})
    return keys, bundles


@dataclass
class DecodedCheckins:
    """Check-in records decoded from one partition's messages, in arrival order."""

    records: list[dict] = field(default_factory=list)
    seq: list[int] = field(default_factory=list)  # arrival order, from the offset and the index in a bundle
    undecodable: list[tuple[int, str]] = field(default_factory=list)  # (message index, why)


class CheckinDecoder:
    """Reads the checkins topic: `CheckinBundle` messages and single `Checkin` messages (any version),
    each resolved to the latest schema. Pure: the registry is an in-memory lookup."""

    def __init__(self, registry: Any) -> None:  # SchemaRegistry or ConfluentRegistry
        self.registry = registry
        self.checkin_reader = registry.latest(CHECKINS_SUBJECT)[1]
        self.bundle_reader = registry.latest(CHECKIN_BUNDLES_SUBJECT)[1]
        self._is_bundle: dict[bytes, bool] = {}  # by 5-byte header

    def _bundled(self, value: bytes) -> bool:
        head = value[:HEADER_SIZE]
        known = self._is_bundle.get(head)
        if known is None:
            try:  # by the writer schema's full name, so any registry (local or Confluent) will do
                writer = self.registry.schema_by_id(schema_id_of(value))
                known = isinstance(writer, dict) and writer.get("name") == BUNDLE_NAME
            except (QrtraceError, LookupError):
                return False  # undecodable either way: the single-message path reports why
            self._is_bundle[head] = known
        return known

    def decode(self, values: Sequence[bytes], offsets: Sequence[int]) -> DecodedCheckins:
        """Decode messages of one partition; a message that cannot be read is reported, not raised."""
        is_bundle = [self._bundled(v) for v in values]
        bundles = self._decode_all([v for v, b in zip(values, is_bundle, strict=True) if b], self.bundle_reader)
        singles = self._decode_all([v for v, b in zip(values, is_bundle, strict=True) if not b], self.checkin_reader)
        out, next_bundle, next_single = DecodedCheckins(), iter(bundles), iter(singles)
        for i, (offset, bundled) in enumerate(zip(offsets, is_bundle, strict=True)):
            decoded = next(next_bundle) if bundled else next(next_single)
            if isinstance(decoded, str):
                out.undecodable.append((i, decoded))
            elif bundled:
                out.records += decoded["checkins"]
                out.seq += range(offset * SEQ_PER_MESSAGE, offset * SEQ_PER_MESSAGE + len(decoded["checkins"]))
            else:
                out.records.append(decoded)
                out.seq.append(offset * SEQ_PER_MESSAGE)
        return out

    def _decode_all(self, values: list[bytes], reader: object) -> list[dict | str]:
        """Records, or the reason a message cannot be read (found one by one only when the batch fails)."""
        try:
            return list(decode_batch(self.registry, values, reader))
        except WireFormatError:
            pass
        out: list[dict | str] = []
        for value in values:
            try:
                out.append(decode_batch(self.registry, [value], reader)[0])
            except WireFormatError as exc:
                out.append(str(exc))
        return out


def checkin_batch(records: Sequence[dict], seq: np.ndarray) -> CheckinBatch:
    """Columns from decoded `Checkin` records (v1 records read with the v2 schema have no declaration)."""
    col = lambda name: np.array([r[name] for r in records], dtype=object)  # noqa: E731
    return CheckinBatch(
        scan_id=col("scan_id"),
        venue_id=col("venue_id"),
        person=col("person"),
        is_in=np.array([r["direction"] == "in" for r in records], dtype=bool),
        event_time_us=np.array([r["event_time_us"] for r in records], dtype=np.int64),
        offset_minutes=np.array([r["offset_minutes"] for r in records], dtype=np.int16),
        mode=col("mode"),
        scanner_id=col("scanner_id"),
        declaration_sealed=np.array(
            [base64.b64encode(d).decode() if d else "" for d in (r.get("declaration_sealed") for r in records)],
            dtype=object,
        ),
        seq=seq.astype(np.int64),
    )


def dead_letter_record(letter: DeadLetter, source: str, received_at_us: int) -> dict:
    return {
        "dl_id": letter.dl_id,
        "received_at_us": received_at_us,
        "source": source,
        "reason": letter.reason,
        "detail": letter.detail,
        "payload_redacted": letter.payload_redacted,
        "payload_sealed": letter.payload_sealed.encode(),
    }


def dead_letter_from_record(record: dict) -> tuple[DeadLetter, str, int]:
    letter = DeadLetter(record["dl_id"], record["reason"], record["detail"], record["payload_redacted"],
                        record["payload_sealed"].decode())  # fmt: skip
    return letter, record["source"], record["received_at_us"]
