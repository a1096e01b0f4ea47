"""Columnar batches <-> the Avro records that travel on Kafka. Pure: no client, no I/O."""

from __future__ import annotations

import base64
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiokafka.partitioner import murmur2

from qrtrace.errors import QrtraceError
from qrtrace.schemas.registry import CHECKIN_BUNDLES_SUBJECT, CHECKINS_SUBJECT
from qrtrace.schemas.wire import HEADER_SIZE, WireFormatError, decode_batch, schema_id_of
from qrtrace.stream_processors.batch import CheckinBatch, DeadLetter

MAX_BUNDLE = 1_000  # check-ins per bundle: ~200 KB at most, far below Kafka's 1 MB message limit
BUNDLE_NAME = "vn.qrtrace.CheckinBundle"
SEQ_PER_MESSAGE = 1 << 16  # arrival order of a bundled check-in: offset * SEQ_PER_MESSAGE + its index


def checkin_records(batch: CheckinBatch) -> list[dict]:
    """One Avro `Checkin` (v3) record per row."""
    return [
        {
            "scan_id": s, "venue_id": v, "person": p, "direction": "in" if i else "out", "event_time_us": t,
            "offset_minutes": o, "mode": m, "scanner_id": sc,
            "declaration_sealed": base64.b64decode(d) if d else None, "zone": z,
        }
        for s, v, p, i, t, o, m, sc, d, z in zip(
            batch.scan_id.tolist(), batch.venue_id.tolist(), batch.person.tolist(), batch.is_in.tolist(),
            batch.event_time_us.tolist(), batch.offset_minutes.tolist(), batch.mode.tolist(),
            batch.scanner_id.tolist(), batch.declaration_sealed.tolist(), batch.zone.tolist(), strict=True,
        )
    ]  # fmt: skip


def partition_of(venue_id: str, partitions: int) -> int:
    """Kafka's default (Java murmur2) partition for a venue key; Faust tables use the same hash."""
    return (murmur2(venue_id.encode()) & 0x7FFFFFFF) % partitions


def checkin_bundles(batch: CheckinBatch, partitions: int) -> tuple[list[int], list[dict]]:
    """Group a batch into Avro `CheckinBundle` records, one partition each, arrival order kept inside.

    Every check-in goes to its venue's partition, and keeps its place among that partition's other
    check-ins: the workers then see exactly the order single messages would have had.
    Returns the partition and the record of each bundle (at most MAX_BUNDLE check-ins each)."""
    records = checkin_records(batch)
    of_venue = {v: partition_of(v, partitions) for v in set(batch.venue_id.tolist())}
    part = np.array([of_venue[v] for v in batch.venue_id.tolist()], dtype=np.int64)
    order = np.argsort(part, kind="stable")  # stable: arrival order within a partition
    cuts = [*np.flatnonzero(np.r_[True, part[order][1:] != part[order][:-1]]).tolist(), len(order)]
    targets, bundles = [], []
    for lo, hi in itertools.pairwise(cuts):
        for start in range(lo, hi, MAX_BUNDLE):
            targets.append(int(part[order[lo]]))
            bundles.append({"checkins": [records[i] for i in order[start : min(hi, start + MAX_BUNDLE)].tolist()]})
    return targets, bundles


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
    """Columns from decoded `Checkin` records (v1 records read with the v3 schema have no declaration, v1 and
    v2 records no zone: the reader's defaults fill them)."""
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
        zone=np.array([r.get("zone") or "" for r in records], dtype=object),
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
