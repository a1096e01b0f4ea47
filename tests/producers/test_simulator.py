"""The district simulator: deterministic, contract-shaped, realistic, with the faults it promises."""

from __future__ import annotations

import re
import statistics
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
import pytest

from qrtrace.domain.admin_units import load_communes
from qrtrace.domain.categories import load_categories
from qrtrace.errors import InputError
from qrtrace.producers.simulator import (
    BAD_RECORD_KINDS,
    MODES,
    REQUIRED_FIELDS,
    VN_TZ,
    SimulatedDistrict,
    SimulationConfig,
    build_district,
    checkin_batches,
    expected_event_count,
)

FRIDAY = datetime(2021, 7, 16, tzinfo=VN_TZ)  # three days from here include a weekend


def small_config(**overrides: object) -> SimulationConfig:
    """Six communes (the town first), 1,500 people, three days: ~15k records."""
    settings: dict[str, object] = {
        "seed": 7,
        "start": FRIDAY,
        "days": 3,
        "population": 1_500,
        "communes": tuple(load_communes()[:6]),
        "weddings_per_commune_day": 0.4,
        "funerals_per_commune_day": 0.2,
    }
    settings.update(overrides)
    return SimulationConfig(**settings)  # type: ignore[arg-type]


def generate(config: SimulationConfig, batch_size: int = 5_000) -> tuple[SimulatedDistrict, list[bytes]]:
    district = build_district(config)
    return district, [line for batch in checkin_batches(district, batch_size) for line in batch]


@dataclass
class Record:
    line: bytes
    data: dict[str, object] | None  # None when the line is not a JSON object
    problem: str | None  # None for a good record (valid contract and registered venue)

    @property
    def time(self) -> datetime:
        assert self.data is not None
        return self.data["_time"]  # type: ignore[return-value]


def contract_problem(data: object, registered: set[str]) -> str | None:
    """The first way a parsed record breaks the ingest contract, named like BAD_RECORD_KINDS."""
    if not isinstance(data, dict):
        return "malformed_json"
    if any(f not in data for f in REQUIRED_FIELDS):
        return "missing_field"
    if set(data) - {*REQUIRED_FIELDS, "declaration", "_time"}:
        return "extra_field"
    if any(not isinstance(data[f], str) for f in REQUIRED_FIELDS):
        return "wrong_type"
    if "declaration" in data and not isinstance(data["declaration"], dict):
        return "wrong_type"
    if data["direction"] not in ("in", "out"):
        return "bad_direction"
    if data["mode"] not in MODES:
        return "bad_mode"
    try:
        when = datetime.fromisoformat(data["event_time"])
    except ValueError:
        return "bad_time"
    if when.utcoffset() is None:
        return "offsetless_time"
    data["_time"] = when  # parsed once, for the tests
    if uuid.UUID(data["scan_id"]).version != 4 or data["scanner_id"] != f"S-{data['venue_id']}":
        return "bad_ids"
    if data["venue_id"] not in registered:
        return "unknown_venue"
    return None


def classify(district: SimulatedDistrict, lines: list[bytes]) -> list[Record]:
    registered = {v.venue_id for v in district.venues}
    records = []
    for line in lines:
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError:
            records.append(Record(line, None, "malformed_json"))
            continue
        records.append(Record(line, data if isinstance(data, dict) else None, contract_problem(data, registered)))
    return records


def good(records: list[Record]) -> list[Record]:
    return [r for r in records if r.problem is None]


@dataclass
class Replay:
    """docs/design.md's pairing of one person's events at one venue, run over the whole output."""

    visits: int
    closed_by_out: int
    repeats: int
    unmatched_outs: int
    durations_ok: bool


def replay(district: SimulatedDistrict, records: list[Record]) -> Replay:
    dwell = {
        v.venue_id: timedelta(minutes=load_categories()[v.category].default_dwell_minutes) for v in district.venues
    }
    first_delivery: dict[str, Record] = {}
    for r in good(records):
        assert r.data is not None
        first_delivery.setdefault(str(r.data["scan_id"]), r)
    by_pair: dict[tuple[str, str], list[tuple[datetime, str]]] = defaultdict(list)
    for r in first_delivery.values():
        assert r.data is not None
        by_pair[(str(r.data["person_id"]), str(r.data["venue_id"]))].append((r.time, str(r.data["direction"])))
    result = Replay(0, 0, 0, 0, True)
    for (_, venue), events in by_pair.items():
        open_start: datetime | None = None
        for when, direction in sorted(events):
            if direction == "in":
                if open_start is not None and when <= open_start + dwell[venue]:
                    result.repeats += 1
                    continue
                result.visits += 1
                open_start = when
            elif open_start is None:
                result.unmatched_outs += 1
            else:
                result.closed_by_out += 1
                result.durations_ok &= when > open_start
                open_start = None
    return result


@pytest.fixture(scope="module")
def default_run() -> tuple[SimulatedDistrict, list[Record]]:
    district, lines = generate(small_config())
    return district, classify(district, lines)


@pytest.fixture(scope="module")
def faulty_run() -> tuple[SimulatedDistrict, list[Record]]:
    """Fault shares raised so that ~15k records give stable ratios."""
    config = small_config(
        seed=11, retry_share=0.06, bad_record_share=0.05, unmatched_checkout_share=0.012, late_share=0.08
    )
    district, lines = generate(config)
    return district, classify(district, lines)


@pytest.fixture(scope="module")
def clean_run() -> tuple[SimulatedDistrict, list[Record]]:
    """No bad records, no unmatched check-outs, and a tighter lateness bound."""
    config = small_config(
        seed=5, bad_record_share=0.0, unmatched_checkout_share=0.0, max_late_minutes=7, late_share=0.05
    )
    district, lines = generate(config)
    return district, classify(district, lines)


def test_same_config_gives_byte_identical_output_whatever_the_batch_size() -> None:
    config = small_config(population=600, days=2)
    _, first = generate(config, batch_size=5_000)
    _, again = generate(small_config(population=600, days=2), batch_size=333)
    assert first == again
    _, other_seed = generate(small_config(population=600, days=2, seed=8))
    assert other_seed != first


def test_batches_are_full_except_the_last() -> None:
    district = build_district(small_config(population=500, days=2))
    sizes = [len(b) for b in checkin_batches(district, batch_size=1_000)]
    assert sizes and all(s == 1_000 for s in sizes[:-1]) and 0 < sizes[-1] <= 1_000


def test_venues_are_registered_once_with_vietnamese_names(default_run) -> None:
    district, _ = default_run
    ids = [v.venue_id for v in district.venues]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"VN[1-8]\d{6}", i) for i in ids)
    categories = load_categories()
    communes = {c.commune_code for c in district.config.communes}
    assert all(v.category in categories and v.commune_code in communes and v.capacity > 0 for v in district.venues)
    names = [v.name for v in district.venues]
    assert len(set(names)) == len(names)
    assert "Chợ Sơn Dương" in names
    assert any(n.startswith("Xe buýt tuyến ") for n in names)
    assert sum(any(ord(ch) > 127 for ch in n) for n in names) > len(names) / 2  # diacritics


def test_people_check_in_with_phones_citizen_ids_or_personal_qr(default_run) -> None:
    district, _ = default_run
    ids = [p.person_id for p in district.people]
    assert len(set(ids)) == len(ids) == district.config.population
    kinds = Counter(
        "phone"
        if re.fullmatch(r"0[35789]\d{8}", i)
        else "citizen"
        if re.fullmatch(r"008\d{9}", i)
        else "qr"
        if re.fullmatch(r"QR-[0-9a-f]{16}", i)
        else "other"
        for i in ids
    )
    assert kinds["other"] == 0 and kinds["phone"] > kinds["citizen"] > 0 and kinds["qr"] > 0
    assert all(re.fullmatch(r"0[35789]\d{8}", p.phone) for p in district.people)
    assert {p.role for p in district.people} == {"worker", "farmer", "student", "retired", "trader"}


def test_without_bad_records_every_record_meets_the_contract(clean_run) -> None:
    district, records = clean_run
    assert [r.problem for r in records if r.problem] == []
    # Compact JSON, exactly the contract's fields, local times with the +07:00 offset.
    assert all(orjson.dumps(r.data | {"_time": None}) == r.line[:-1] + b',"_time":null}' for r in records)
    assert all(str(r.data["event_time"]).endswith("+07:00") for r in records if r.data)
    start = district.config.start
    assert start is not None
    assert all(start <= r.time < start + timedelta(days=district.config.days) for r in records)
    modes = Counter(str(r.data["mode"]) for r in records if r.data)
    assert 0.06 < modes["manual"] / len(records) < 0.14
    assert modes["venue_qr"] > modes["personal_qr"] > modes["manual"]
    declared = [r.data["declaration"] for r in records if r.data and "declaration" in r.data]
    assert declared and all(set(d) == {"fever", "cough", "contact_f0"} for d in declared)  # type: ignore[arg-type]
    assert all(r.data["direction"] == "in" for r in records if r.data and "declaration" in r.data)


def test_retries_and_bad_records_match_the_configured_shares(faulty_run) -> None:
    district, records = faulty_run
    config = district.config
    good_records = good(records)
    scan_ids = Counter(str(r.data["scan_id"]) for r in good_records if r.data)
    genuine = len(scan_ids)
    retries = len(good_records) - genuine
    bad = [r for r in records if r.problem]
    assert retries / genuine == pytest.approx(config.retry_share, rel=0.2)
    assert len(bad) / genuine == pytest.approx(config.bad_record_share, rel=0.2)
    assert {r.problem for r in bad} == set(BAD_RECORD_KINDS)
    # A retry repeats the very same bytes.
    lines_by_id: dict[str, set[bytes]] = defaultdict(set)
    for r in good_records:
        lines_by_id[str(r.data["scan_id"])].add(r.line)  # type: ignore[index]
    assert all(len(v) == 1 for v in lines_by_id.values())
    # Unregistered venues appear only in the deliberate 'unknown venue' records, with reserved ids.
    registered = {v.venue_id for v in district.venues}
    strays = [r for r in records if r.data and isinstance(r.data.get("venue_id"), str)]
    strays = [r for r in strays if r.data["venue_id"] not in registered]  # type: ignore[index]
    assert strays and all(r.problem in ("unknown_venue", *BAD_RECORD_KINDS) for r in strays)
    assert all(re.fullmatch(r"VN9\d{6}", str(r.data["venue_id"])) for r in strays)  # type: ignore[index]


def test_check_outs_follow_their_check_ins_and_unmatched_ones_are_rare(faulty_run) -> None:
    district, records = faulty_run
    config = district.config
    result = replay(district, records)
    assert result.durations_ok
    genuine = len({str(r.data["scan_id"]) for r in good(records) if r.data})
    assert result.unmatched_outs / genuine == pytest.approx(config.unmatched_checkout_share, rel=0.35)
    assert 1 - result.closed_by_out / result.visits == pytest.approx(config.missing_checkout_share, abs=0.04)
    assert result.repeats / result.visits == pytest.approx(config.double_scan_share, rel=0.3)


def test_no_unmatched_check_outs_when_none_are_asked_for(clean_run) -> None:
    district, records = clean_run
    result = replay(district, records)
    assert result.unmatched_outs == 0 and result.durations_ok and result.closed_by_out > 0


@pytest.mark.parametrize("run", ["faulty_run", "clean_run"])
def test_delivery_is_mostly_in_event_time_order_with_bounded_lateness(run: str, request) -> None:
    """Every good record's event_time >= (latest event_time delivered before it) - max_late_minutes.

    This follows from delivery_time - event_time <= max_late_minutes for every good record. Only late
    deliveries and retries fall behind by more than the few seconds of ordinary latency.
    """
    district, records = request.getfixturevalue(run)
    config = district.config
    max_late = config.max_late_minutes
    latest: datetime | None = None
    behind: list[timedelta] = []
    for r in good(records):
        when = r.time
        if latest is not None and when < latest:
            behind.append(latest - when)
        latest = when if latest is None or when > latest else latest
    assert max(behind) <= timedelta(minutes=max_late)
    assert max(behind) > timedelta(minutes=max_late) * 0.8  # late records do use the allowance
    far_behind = sum(b > timedelta(seconds=5) for b in behind)
    assert far_behind / len(records) <= config.late_share + config.retry_share + 0.01


def test_weddings_funerals_and_public_transport_happen(default_run) -> None:
    district, records = default_run
    venues = {v.venue_id: v for v in district.venues}
    ins_by_category: Counter[str] = Counter()
    guests: dict[str, set[str]] = defaultdict(set)
    arrivals: dict[str, list[datetime]] = defaultdict(list)
    for r in good(records):
        assert r.data is not None
        venue = venues[str(r.data["venue_id"])]
        if r.data["direction"] == "in":
            ins_by_category[venue.category] += 1
            guests[venue.venue_id].add(str(r.data["person_id"]))
            arrivals[venue.venue_id].append(r.time)
    for category in ("wedding", "funeral", "public_transport", "bus_station", "market", "school", "karaoke"):
        assert ins_by_category[category] > 0, category
    start = district.config.start
    assert start is not None
    assert district.gatherings
    for g in district.gatherings:
        opens = start + timedelta(days=g.day, minutes=g.start_minute)
        assert 10 <= len(guests[g.venue_id]) <= g.guests  # dozens to hundreds of guests
        # Everyone arrives within the hour (a repeat scan may come a few minutes later).
        assert all(opens <= t <= opens + timedelta(minutes=66) for t in arrivals[g.venue_id])


def test_workers_and_students_go_to_their_own_place_on_a_weekday(default_run) -> None:
    district, records = default_run
    start = district.config.start
    assert start is not None and start.weekday() == 4
    friday_ins = {
        (str(r.data["person_id"]), str(r.data["venue_id"]))
        for r in good(records)
        if r.data and r.data["direction"] == "in" and r.time < start + timedelta(days=1)
    }
    for role in ("worker", "student"):
        people = [p for p in district.people if p.role == role and p.anchor_venue]
        present = sum((p.person_id, p.anchor_venue) in friday_ins for p in people)
        assert present / len(people) > 0.8, role


def test_venue_popularity_is_skewed(default_run) -> None:
    _, records = default_run
    visits = Counter(str(r.data["venue_id"]) for r in good(records) if r.data and r.data["direction"] == "in")
    median = statistics.median(visits.values())
    assert max(visits.values()) >= 10 * median


def test_expected_event_count_is_close(default_run) -> None:
    district, records = default_run
    assert expected_event_count(district) == pytest.approx(len(records), rel=0.1)


def test_custom_venue_counts_apply_to_every_commune() -> None:
    counts = {"market": 2, "school": 1, "public_transport": 1, "essential_shop": 3}
    district = build_district(small_config(venues_per_commune=counts, population=300, days=1))
    standing = Counter((v.commune_code, v.category) for v in district.venues if v.category in counts)
    assert standing == {(c.commune_code, k): n for c in district.config.communes for k, n in counts.items()}
    _, lines = generate(small_config(venues_per_commune=counts, population=300, days=1))
    assert lines


def test_config_is_checked_and_start_defaults_to_local_midnight_days_ago() -> None:
    with pytest.raises(InputError, match="UTC offset"):
        SimulationConfig(start=datetime(2021, 7, 16))  # noqa: DTZ001 - the point of the test
    with pytest.raises(InputError, match="retry_share"):
        SimulationConfig(retry_share=1.5)
    with pytest.raises(InputError, match="weddings_per_commune_day"):
        SimulationConfig(venues_per_commune={"wedding": 1})
    with pytest.raises(InputError, match="Unknown venue category"):
        SimulationConfig(venues_per_commune={"casino": 1})
    config = SimulationConfig(days=4)
    assert config.start is not None and config.start.utcoffset() == timedelta(hours=7)
    assert config.start.time() == datetime.min.time()
    assert (datetime.now(VN_TZ).date() - config.first_day).days in (4, 5)  # 5 if midnight just passed
    afternoon = SimulationConfig(start=datetime(2021, 7, 16, 15, 30, tzinfo=VN_TZ))
    assert afternoon.start == FRIDAY


def test_market_zones_are_off_by_default_and_change_nothing_but_the_zone_when_on() -> None:
    plain_district, plain = generate(small_config())
    assert not any(v.zones for v in plain_district.venues) and not any(b'"zone"' in line for line in plain)
    district, zoned = generate(small_config(market_zones=3))
    markets = {v.venue_id for v in district.venues if v.category == "market"}
    assert markets and all(len(v.zones) == 3 for v in district.venues if v.venue_id in markets)
    assert all(not v.zones for v in district.venues if v.venue_id not in markets)
    assert len(zoned) == len(plain)
    used = Counter()
    for before, after in zip(plain, zoned, strict=True):
        if before == after:
            continue
        record = orjson.loads(after)
        assert record["venue_id"] in markets
        zone = record.pop("zone")
        assert zone in district.venues[[v.venue_id for v in district.venues].index(record["venue_id"])].zones
        assert orjson.loads(before) == record  # the same scan, now naming its section
        used[zone] += 1
    assert len(used) == 3  # every section is visited
    with pytest.raises(InputError, match="market_zones"):
        small_config(market_zones=99)
