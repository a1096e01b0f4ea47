"""The packaged Avro schemas: documented, pseudonyms only, and every one round-trips on the wire."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qrtrace.schemas import wire
from qrtrace.schemas.registry import (
    CHECKINS_SUBJECT,
    PACKAGED_SUBJECTS,
    SchemaRegistry,
    default_registry,
    load_packaged,
    packaged_names,
)

US = 1_626_000_000_000_000  # 2021-07-11 in microseconds

SAMPLES_CHECKIN_V1 = {
    "scan_id": "scan-0001",
    "venue_id": "TQ-076-0001",
    "person": "9f" * 32,
    "direction": "in",
    "event_time_us": US,
    "offset_minutes": 420,
    "mode": "venue_qr",
    "scanner_id": "bluezone-abc",
}
SAMPLES: dict[str, dict[str, Any]] = {
    "checkin.v1": SAMPLES_CHECKIN_V1,
    "checkin.v2": {
        "scan_id": "scan-0002",
        "venue_id": "TQ-076-0001",
        "person": "0a" * 32,
        "direction": "out",
        "event_time_us": US + 3_600_000_000,
        "offset_minutes": 420,
        "mode": "personal_qr",
        "scanner_id": "staff-7",
        "declaration_sealed": b"\x01sealed\xff",
    },
    "checkin.v3": {**SAMPLES_CHECKIN_V1, "scan_id": "scan-0003", "declaration_sealed": None, "zone": "Khu hàng khô"},
    "checkin_bundle.v1": {
        "checkins": [
            {**base, "scan_id": f"scan-b{i}", "declaration_sealed": None}
            for i, base in enumerate([SAMPLES_CHECKIN_V1, SAMPLES_CHECKIN_V1])
        ],
    },
    "checkin_bundle.v2": {
        "checkins": [
            {**SAMPLES_CHECKIN_V1, "scan_id": f"scan-z{i}", "declaration_sealed": None, "zone": zone}
            for i, zone in enumerate(["", "Khu A"])
        ],
    },
    "venue.v1": {
        "venue_id": "TQ-076-0001",
        "name": "Chợ Sơn Dương",
        "category": "market",
        "commune_code": "02536",
        "capacity": 800,
    },
    "case.v1": {
        "case_id": "BN-12345",
        "person": "ab" * 32,
        "infectious_from_us": US - 2 * 86_400_000_000,
        "infectious_to_us": US,
        "declared_at_us": US + 1,
        "declared_by": "cdc-tuyenquang-3",
    },
    "visit.v1": {
        "venue_id": "TQ-076-0001",
        "person": "ab" * 32,
        "start_us": US,
        "end_us": US + 1_800_000_000,
        "closed_by": "next_checkin",
        "version": 2,
    },
    "identity.v1": {
        "person": "ab" * 16,
        "identifier_sealed": "c2VhbGVk",
        "contact_sealed": "",
    },
    "dead_letter.v1": {
        "dl_id": "dl-1",
        "received_at_us": US,
        "source": "checkins.jsonl:12",
        "reason": "unknown_venue",
        "detail": "Venue TQ-999 is not registered.",
        "payload_redacted": '{"venue_id": "TQ-999", "person_id": "<redacted>"}',
        "payload_sealed": b"\x00\x01\x02",
    },
}

# Raw identifiers must never be a field of anything that travels on Kafka.
RAW_IDENTIFIERS = {"person_id", "phone", "citizen_id", "cccd", "cmnd"}


def _split(name: str) -> tuple[str, int]:
    base, version = name.rsplit(".v", 1)
    return base, int(version)


def _ids_by_name(registry: SchemaRegistry) -> dict[str, int]:
    ids = {}
    for subject, (base, versions) in PACKAGED_SUBJECTS.items():
        for version, schema_id in zip(versions, registry.versions(subject), strict=True):
            ids[f"{base}.v{version}"] = schema_id
    return ids


def test_every_packaged_schema_has_a_sample_and_a_subject() -> None:
    assert sorted(SAMPLES) == packaged_names()
    assert sorted(_ids_by_name(default_registry())) == packaged_names()


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_schema_is_documented_and_holds_pseudonyms_only(name: str) -> None:
    schema = load_packaged(*_split(name))
    assert schema["namespace"] == "vn.qrtrace"
    assert schema["doc"]
    for field in schema["fields"]:
        assert field.get("doc"), f"{name}: field {field['name']} has no doc"
        assert field["name"] not in RAW_IDENTIFIERS


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_round_trip(name: str) -> None:
    registry = default_registry()
    schema_id = _ids_by_name(registry)[name]
    schema = registry.schema_by_id(schema_id)
    messages = wire.encode_batch(schema_id, schema, [SAMPLES[name]] * 3)
    assert all(wire.schema_id_of(m) == schema_id for m in messages)
    assert wire.decode_batch(registry, messages) == [SAMPLES[name]] * 3
    assert wire.decode(registry, wire.encode(schema_id, schema, SAMPLES[name])) == SAMPLES[name]


def test_v1_checkin_read_with_v2_reader_gets_no_declaration() -> None:
    registry = default_registry()
    v1_id, v2_id, _ = registry.versions(CHECKINS_SUBJECT)
    v1 = wire.encode_batch(v1_id, registry.schema_by_id(v1_id), [SAMPLES["checkin.v1"]])
    v2 = wire.encode_batch(v2_id, registry.schema_by_id(v2_id), [SAMPLES["checkin.v2"]])
    read = wire.decode_batch(registry, v1 + v2, reader_schema=load_packaged("checkin", 2))
    assert read == [{**SAMPLES["checkin.v1"], "declaration_sealed": None}, SAMPLES["checkin.v2"]]
    assert list(read[0]) == [f["name"] for f in load_packaged("checkin", 2)["fields"]]


def test_v1_checkin_read_without_reader_keeps_its_own_shape() -> None:
    registry = default_registry()
    v1_id = registry.versions(CHECKINS_SUBJECT)[0]
    message = wire.encode(v1_id, registry.schema_by_id(v1_id), SAMPLES["checkin.v1"])
    assert wire.decode(registry, message) == SAMPLES["checkin.v1"]


def test_v1_and_v2_checkins_read_with_the_v3_reader_get_no_zone() -> None:
    """Schema evolution: producers of v1 and v2 keep working once v3 (the zone) is the reader."""
    registry = default_registry()
    v1_id, v2_id, v3_id = registry.versions(CHECKINS_SUBJECT)
    old = wire.encode_batch(v1_id, registry.schema_by_id(v1_id), [SAMPLES["checkin.v1"]])
    old += wire.encode_batch(v2_id, registry.schema_by_id(v2_id), [SAMPLES["checkin.v2"]])
    new = wire.encode_batch(v3_id, registry.schema_by_id(v3_id), [SAMPLES["checkin.v3"]])
    read = wire.decode_batch(registry, old + new, reader_schema=load_packaged("checkin", 3))
    assert read == [{**SAMPLES["checkin.v1"], "declaration_sealed": None, "zone": ""},
                    {**SAMPLES["checkin.v2"], "zone": ""}, SAMPLES["checkin.v3"]]  # fmt: skip


LONGS = st.integers(-(2**63), 2**63 - 1)
INTS = st.integers(-(2**31), 2**31 - 1)

checkins_v2 = st.fixed_dictionaries(
    {
        "scan_id": st.text(),
        "venue_id": st.text(),
        "person": st.text("0123456789abcdef", min_size=64, max_size=64),
        "direction": st.sampled_from(["in", "out"]),
        "event_time_us": LONGS,
        "offset_minutes": INTS,
        "mode": st.sampled_from(["venue_qr", "personal_qr", "manual"]),
        "scanner_id": st.text(),
        "declaration_sealed": st.none() | st.binary(),
        "zone": st.text(max_size=64),
    }
)


@settings(max_examples=200, deadline=None)
@given(st.lists(checkins_v2, max_size=20))
def test_any_checkin_batch_round_trips(records: list[dict[str, Any]]) -> None:
    registry = default_registry()
    schema_id, schema = registry.latest(CHECKINS_SUBJECT)
    assert wire.decode_batch(registry, wire.encode_batch(schema_id, schema, records)) == records
