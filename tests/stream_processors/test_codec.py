"""The checkins topic's codec: bundles keep each venue's arrival order, and the decoder reads bundles,
single check-ins of the previous schema version and poison side by side."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qrtrace.producers.kafka_producer import checkin_messages
from qrtrace.schemas import wire
from qrtrace.schemas.registry import (
    CHECKIN_BUNDLES_SUBJECT,
    CHECKINS_SUBJECT,
    SchemaRegistry,
    default_registry,
    load_packaged,
)
from qrtrace.stream_processors import codec
from qrtrace.stream_processors.codec import SEQ_PER_MESSAGE, CheckinDecoder, checkin_batch


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return default_registry()


def _batch(venues: list[str]) -> object:
    records = [
        {"scan_id": f"s-{i}", "venue_id": v, "person": f"{i % 7:032x}", "direction": "in" if i % 3 else "out",
         "event_time_us": 1_626_000_000_000_000 + 60_000_000 * (i % 11), "offset_minutes": 420,
         "mode": "venue_qr", "scanner_id": "app", "declaration_sealed": b"sealed" if i % 5 == 0 else None}
        for i, v in enumerate(venues)
    ]  # fmt: skip
    return checkin_batch(records, np.arange(len(records)))


def test_bundle_schema_carries_the_latest_checkin() -> None:
    bundle = load_packaged("checkin_bundle", 1)
    items = next(f for f in bundle["fields"] if f["name"] == "checkins")["type"]["items"]
    assert items == load_packaged("checkin", 2)  # a new Checkin version needs a new bundle version


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["A", "B", "C", "D"]), min_size=1, max_size=60), st.integers(1, 7))
def test_bundles_keep_arrival_order_per_venue(venues: list[str], max_bundle: int) -> None:
    registry = default_registry()
    batch = _batch(venues)
    original = codec.MAX_BUNDLE
    codec.MAX_BUNDLE = max_bundle
    try:
        keys, values = checkin_messages(batch, registry.latest(CHECKIN_BUNDLES_SUBJECT))
    finally:
        codec.MAX_BUNDLE = original
    decoded = CheckinDecoder(registry).decode(values, list(range(len(values))))
    assert not decoded.undecodable
    assert sorted(r["scan_id"] for r in decoded.records) == sorted(batch.scan_id.tolist())  # nothing lost or added
    for venue in set(venues):
        got = [r["scan_id"] for r in decoded.records if r["venue_id"] == venue]
        assert got == [s for s, v in zip(batch.scan_id, batch.venue_id, strict=True) if v == venue]
    assert all(len(decode_one(registry, v)["checkins"]) <= max_bundle for v in values)
    assert [k.decode() for k in keys] == [decode_one(registry, v)["venue_id"] for v in values]
    assert decoded.seq == sorted(decoded.seq) and len(set(decoded.seq)) == len(decoded.seq)


def decode_one(registry: SchemaRegistry, value: bytes) -> dict:
    return wire.decode(registry, value)


def test_decoder_reads_bundles_previous_version_singles_and_reports_poison(registry: SchemaRegistry) -> None:
    batch = _batch(["A", "A", "B"])
    _, bundles = checkin_messages(batch, registry.latest(CHECKIN_BUNDLES_SUBJECT))
    v1_id = registry.versions(CHECKINS_SUBJECT)[0]
    old = {"scan_id": "old-1", "venue_id": "A", "person": "ff" * 16, "direction": "in",
           "event_time_us": 1_626_000_000_000_000, "offset_minutes": 420, "mode": "manual",
           "scanner_id": "paper"}  # fmt: skip
    single_v1 = wire.encode(v1_id, load_packaged("checkin", 1), old)
    poison = b"\x00\x00\x00\x00\x08garbage"  # names the bundle schema, body unreadable
    values = [bundles[0], single_v1, poison, b"not avro", bundles[1]]
    decoded = CheckinDecoder(registry).decode(values, [10, 11, 12, 13, 14])
    assert [r["scan_id"] for r in decoded.records] == ["s-0", "s-1", "old-1", "s-2"]
    assert decoded.records[2]["declaration_sealed"] is None  # v1 read with the v2 schema
    assert decoded.seq == [10 * SEQ_PER_MESSAGE, 10 * SEQ_PER_MESSAGE + 1, 11 * SEQ_PER_MESSAGE, 14 * SEQ_PER_MESSAGE]
    assert [i for i, _ in decoded.undecodable] == [2, 3]
    assert all(why.endswith(".") for _, why in decoded.undecodable)
