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
from qrtrace.stream_processors.codec import SEQ_PER_MESSAGE, CheckinDecoder, checkin_batch, partition_of


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return default_registry()


def _batch(venues: list[str]) -> object:
    records = [
        {"scan_id": f"s-{i}", "venue_id": v, "person": f"{i % 7:032x}", "direction": "in" if i % 3 else "out",
         "event_time_us": 1_626_000_000_000_000 + 60_000_000 * (i % 11), "offset_minutes": 420,
         "mode": "venue_qr", "scanner_id": "app", "declaration_sealed": b"sealed" if i % 5 == 0 else None,
         "zone": "Khu A" if i % 4 == 1 else ""}
        for i, v in enumerate(venues)
    ]  # fmt: skip
    return checkin_batch(records, np.arange(len(records)))


def test_bundle_schema_carries_the_latest_checkin() -> None:
    bundle = load_packaged("checkin_bundle", 2)
    items = next(f for f in bundle["fields"] if f["name"] == "checkins")["type"]["items"]
    assert items == load_packaged("checkin", 3)  # a new Checkin version needs a new bundle version


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from("ABCDE"), min_size=1, max_size=60), st.integers(1, 7), st.integers(1, 4))
def test_bundles_keep_arrival_order_per_partition(venues: list[str], max_bundle: int, partitions: int) -> None:
    registry = default_registry()
    batch = _batch(venues)
    original = codec.MAX_BUNDLE
    codec.MAX_BUNDLE = max_bundle
    try:
        targets, values = checkin_messages(batch, registry.latest(CHECKIN_BUNDLES_SUBJECT), partitions)
    finally:
        codec.MAX_BUNDLE = original
    decoded = CheckinDecoder(registry).decode(values, list(range(len(values))))
    assert not decoded.undecodable
    assert sorted(r["scan_id"] for r in decoded.records) == sorted(batch.scan_id.tolist())  # nothing lost or added
    for p in range(partitions):  # each partition sees exactly the order single messages would have had
        got = [r["scan_id"] for v, t in zip(values, targets, strict=True) if t == p
               for r in decode_one(registry, v)["checkins"]]  # fmt: skip
        want = [s for s, v in zip(batch.scan_id, batch.venue_id, strict=True) if partition_of(v, partitions) == p]
        assert got == want
    assert all(0 < len(decode_one(registry, v)["checkins"]) <= max_bundle for v in values)
    assert decoded.seq == sorted(decoded.seq) and len(set(decoded.seq)) == len(decoded.seq)


def decode_one(registry: SchemaRegistry, value: bytes) -> dict:
    return wire.decode(registry, value)


def test_decoder_reads_bundles_previous_version_singles_and_reports_poison(registry: SchemaRegistry) -> None:
    batch = _batch(["A", "A", "B"])
    _, bundles = checkin_messages(batch, registry.latest(CHECKIN_BUNDLES_SUBJECT), 1)
    v1_id = registry.versions(CHECKINS_SUBJECT)[0]
    old = {"scan_id": "old-1", "venue_id": "A", "person": "ff" * 16, "direction": "in",
           "event_time_us": 1_626_000_000_000_000, "offset_minutes": 420, "mode": "manual",
           "scanner_id": "paper"}  # fmt: skip
    single_v1 = wire.encode(v1_id, load_packaged("checkin", 1), old)
    poison = wire.header(registry.latest(CHECKIN_BUNDLES_SUBJECT)[0]) + b"garbage"  # the bundle schema, unreadable
    values = [bundles[0], single_v1, poison, b"not avro", bundles[0]]
    decoded = CheckinDecoder(registry).decode(values, [10, 11, 12, 13, 14])
    assert [r["scan_id"] for r in decoded.records] == ["s-0", "s-1", "s-2", "old-1", "s-0", "s-1", "s-2"]
    assert decoded.records[3]["declaration_sealed"] is None  # v1 read with the v3 schema
    zoned = checkin_batch(decoded.records, np.array(decoded.seq))
    assert zoned.zone.tolist() == ["", "Khu A", "", "", "", "Khu A", ""]  # a bundle's zones; none in a v1 check-in
    first, last = 10 * SEQ_PER_MESSAGE, 14 * SEQ_PER_MESSAGE
    assert decoded.seq == [first, first + 1, first + 2, 11 * SEQ_PER_MESSAGE, last, last + 1, last + 2]
    assert [i for i, _ in decoded.undecodable] == [2, 3]
    assert all(why.endswith(".") for _, why in decoded.undecodable)
