"""Columnar batches <-> the Avro records that travel on Kafka. Pure: no client, no I/O."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import numpy as np

from qrtrace.stream_processors.batch import CheckinBatch, DeadLetter


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
