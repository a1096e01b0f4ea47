"""Dedupe and pairing: exact visits for retried and double scans, missing check-outs; and the properties
that make pairing a function of the set of check-ins: any delivery order within the dedupe window, any
batch split and any partition count give the brute-force oracle's visits and outcomes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from qrtrace.stream_processors.batch import US_PER_MINUTE, CheckinBatch
from qrtrace.stream_processors.codec import partition_of
from qrtrace.stream_processors.pairing import CHECKOUT_AFTER_CAP, REPEAT, UNMATCHED_OUT
from qrtrace.stream_processors.pipeline import CheckinProcessor, ProcessorConfig, ProcessorOutput, StoredHistory
from qrtrace.stream_processors.state import PartitionState
from tests.oracles import Ev, oracle_pairing, oracle_visits, oracle_zoned_pairing

M = US_PER_MINUTE
H = 60 * M
DWELL = {"V1": 60 * M, "V2": 30 * M, "V3": 45 * M}
CAPS = {"V1": 4 * H, "V2": 4 * H, "V3": 3 * H}
WINDOW = 48 * H


def batch_of(events: list[Ev], seq0: int = 0) -> CheckinBatch:
    n = len(events)
    obj = lambda xs: np.array(xs, dtype=object)  # noqa: E731
    return CheckinBatch(
        scan_id=obj([e.scan_id for e in events]),
        venue_id=obj([e.venue for e in events]),
        person=obj([e.person for e in events]),
        is_in=np.array([e.is_in for e in events], dtype=bool),
        event_time_us=np.array([e.t for e in events], dtype=np.int64),
        offset_minutes=np.full(n, 420, np.int16),
        mode=obj(["venue_qr"] * n),
        scanner_id=obj(["S"] * n),
        declaration_sealed=obj([""] * n),
        seq=np.arange(seq0, seq0 + n, dtype=np.int64),
        zone=obj([e.zone for e in events]),
    )


def processor(state: PartitionState | None = None, window_us: int = WINDOW) -> CheckinProcessor:
    config = ProcessorConfig(DWELL, {"V1": 2, "V2": 50, "V3": 5}, dedupe_window_us=window_us, cap_us_by_venue=CAPS)
    return CheckinProcessor(config, state)


class FakeStore:
    """What a sink would hold: ReplacingMergeTree by key (highest version wins), withdrawn rows dropped.
    Also answers the processor's history reads from the check-ins it holds (a unit-test fake)."""

    def __init__(self) -> None:
        self.visits: dict[tuple, tuple[int, int, int, int]] = {}  # key -> (version, end, closed_by, withdrawn)
        self.outcomes: dict[str, tuple[int, str]] = {}
        self.outcome_keys: dict[str, tuple[str, str]] = {}
        self.checkins: dict[str, tuple[str, str, int, bool]] = {}
        self.letters: dict[str, str] = {}

    def apply(self, out: ProcessorOutput) -> None:
        v = out.visits
        for row in zip(v.venue_id, v.person, v.start_us, v.end_us, v.closed_by, v.version, v.withdrawn, v.opened_by,
                       strict=True):  # fmt: skip
            venue, person, start, end, by, ver, withdrawn, opened_by = row
            key = (venue, person, int(start), opened_by)
            if key not in self.visits or int(ver) >= self.visits[key][0]:
                self.visits[key] = (int(ver), int(end), int(by), int(withdrawn))
        o = out.outcomes
        for scan, venue, person, ver, outcome in zip(o.scan_id, o.venue_id, o.person, o.version, o.outcome,
                                                     strict=True):  # fmt: skip
            if scan not in self.outcomes or int(ver) >= self.outcomes[scan][0]:
                self.outcomes[scan] = (int(ver), outcome)
            self.outcome_keys[scan] = (venue, person)
        c = out.checkins
        for scan, venue, person, t, is_in, zone in zip(c.scan_id, c.venue_id, c.person, c.event_time_us, c.is_in,
                                                       c.zone, strict=True):  # fmt: skip
            self.checkins.setdefault(scan, (venue, person, int(t), bool(is_in), zone))
        for d in out.dead_letters:
            self.letters[d.dl_id] = d.reason

    def history(self, wanted: list[tuple[str, str, int]]) -> StoredHistory:
        keys = {(v, p) for v, p, _ in wanted}
        events: dict = {}
        for scan, (venue, person, t, is_in, zone) in self.checkins.items():
            if (venue, person) in keys:
                events.setdefault((venue, person), []).append((t, scan, is_in, zone))
        revision: dict = {}
        versions = [((venue, person), ver) for (venue, person, _, _), (ver, *_) in self.visits.items()]
        versions += [(self.outcome_keys[scan], ver) for scan, (ver, _) in self.outcomes.items()]
        for key, ver in versions:  # as the real read does: the highest of visits and outcomes
            if key in keys:
                revision[key] = max(revision.get(key, 0), ver)
        return StoredHistory(events, revision)

    def visible(self) -> set[tuple[str, str, int, int, str]]:
        return {(p, venue, s, e, ob) for (venue, p, s, ob), (_, e, _, w) in self.visits.items() if not w}

    def current_outcomes(self) -> dict[str, str]:
        return {scan: outcome for scan, (_, outcome) in self.outcomes.items()}


def run(events: list[Ev], splits: int = 1, partitions: int = 1) -> FakeStore:  # type: ignore[no-untyped-def]
    """Deliver `events` in this order, in `splits` batches, each batch split by venue into `partitions`
    processors (as Kafka partitions would be)."""
    procs = [processor() for _ in range(partitions)]
    store = FakeStore()
    for chunk in np.array_split(np.arange(len(events)), splits):
        batch = batch_of([events[j] for j in chunk], seq0=int(chunk[0]) if len(chunk) else 0)
        part = np.array([partition_of(v, partitions) for v in batch.venue_id.tolist()], dtype=np.int64)
        for p, proc in enumerate(procs):
            store.apply(proc.process(batch.take(np.flatnonzero(part == p)), history=store.history))
    return store


def test_retried_scan_and_double_scan_give_one_visit() -> None:
    events = [
        Ev("a", "p", "V1", True, 0),
        Ev("a", "p", "V1", True, 0),  # retried delivery: same scan_id
        Ev("b", "p", "V1", True, 5 * M),  # double scan while open: repeat
        Ev("c", "p", "V1", False, 40 * M),
    ]
    proc = processor()
    out = proc.process(batch_of(events))
    assert out.retried == 1 and len(out.checkins) == 3
    assert out.outcome.tolist().count(REPEAT) == 1
    store = FakeStore()
    store.apply(out)
    assert store.visible() == {("p", "V1", 0, 40 * M, "a")}


def test_missing_checkout_ends_at_dwell_and_late_in_after_dwell_splits_visits() -> None:
    events = [Ev("a", "p", "V2", True, 0), Ev("b", "p", "V2", True, 31 * M), Ev("c", "q", "V2", True, 0)]
    assert {v[:4] for v in run(events).visible()} == {
        ("p", "V2", 0, 30 * M),
        ("p", "V2", 31 * M, 61 * M),
        ("q", "V2", 0, 30 * M),
    }


def test_an_unmatched_checkout_is_a_dead_letter_once_no_earlier_checkin_can_arrive() -> None:
    proc, store = processor(), FakeStore()
    store.apply(proc.process(batch_of([Ev("z", "p", "V1", False, 10 * M)])))
    assert store.current_outcomes() == {"z": UNMATCHED_OUT} and not store.letters  # an `in` may still come
    store.apply(proc.process(batch_of([Ev("y", "q", "V1", True, 10 * M + WINDOW + H)])))  # the window passes
    assert store.letters == {"unmatched_checkout:z": UNMATCHED_OUT}
    assert {v[0] for v in store.visible()} == {"q"}


def test_a_late_checkin_turns_an_unmatched_checkout_into_a_visit() -> None:
    proc, store = processor(), FakeStore()
    store.apply(proc.process(batch_of([Ev("out", "p", "V1", False, 3 * H)])))
    store.apply(proc.process(batch_of([Ev("in", "p", "V1", True, 2 * H)])))  # the phone synced later
    assert store.visible() == {("p", "V1", 2 * H, 3 * H, "in")}
    assert store.current_outcomes() == {"out": "closed", "in": "opened"}


def test_a_late_earlier_checkin_withdraws_the_visit_its_repeat_had_opened() -> None:
    proc, store = processor(), FakeStore()
    store.apply(proc.process(batch_of([Ev("b", "p", "V1", True, 30 * M)])))
    assert store.visible() == {("p", "V1", 30 * M, 90 * M, "b")}
    out = proc.process(batch_of([Ev("a", "p", "V1", True, 0)]))  # b is now a repeat scan of a's visit
    assert out.visits.withdrawn.tolist().count(1) == 1
    store.apply(out)
    assert store.visible() == {("p", "V1", 0, 60 * M, "a")}
    assert store.current_outcomes() == {"a": "opened", "b": "repeat"}
    present = {int(w): int(n) for w, n in zip(out.occupancy.window_start_us, out.occupancy.present, strict=True)}
    assert present[0] == 1 and present[75 * M] == 0  # the withdrawn visit's windows are emptied


def test_a_provisional_visit_is_replaced_when_its_checkout_arrives_later() -> None:
    proc, store = processor(), FakeStore()
    first = proc.process(batch_of([Ev("a", "p", "V1", True, 0)]))
    second = proc.process(batch_of([Ev("b", "p", "V1", False, 90 * M)], seq0=1))
    assert second.visits.version[0] > first.visits.version[0] and second.visits.end_us.tolist() == [90 * M]
    present = {int(w): int(n) for w, n in zip(second.occupancy.window_start_us, second.occupancy.present, strict=True)}
    assert present[75 * M] == 1  # occupancy moved the span: windows up to 90 minutes now hold the visit
    store.apply(first)
    store.apply(second)
    assert store.visible() == {("p", "V1", 0, 90 * M, "a")}


def test_a_checkin_older_than_the_window_pairs_with_what_is_stored() -> None:
    proc, store = processor(), FakeStore()
    store.apply(proc.process(batch_of([Ev("out", "p", "V1", False, 3 * H)])))
    store.apply(proc.process(batch_of([Ev("x", "q", "V1", True, 3 * H + WINDOW + 2 * H)])))  # the window passes
    assert "p" not in proc.state.venues["V1"].keys  # p's history is forgotten
    store.apply(proc.process(batch_of([Ev("in", "p", "V1", True, 2 * H)]), history=store.history))  # read back
    assert ("p", "V1", 2 * H, 3 * H, "in") in store.visible()
    assert store.current_outcomes()["out"] == "closed"


def test_a_checkout_after_the_cap_closes_nothing() -> None:
    store = run([Ev("a", "p", "V1", True, 0), Ev("b", "p", "V1", False, 5 * H)])
    assert store.visible() == {("p", "V1", 0, 60 * M, "a")}
    assert store.current_outcomes()["b"] == CHECKOUT_AFTER_CAP


def test_over_capacity_flag() -> None:
    out = processor().process(batch_of([Ev(f"s{i}", f"p{i}", "V1", True, 0) for i in range(3)]))
    assert out.occupancy.present.max() == 3 and out.occupancy.over_capacity.any()  # V1 capacity is 2


# -- properties: the set of check-ins decides, not their order, batches or partitions ----------------------
event_lists = st.lists(
    st.tuples(
        st.sampled_from(["p1", "p2", "p3"]),
        st.sampled_from(["V1", "V2", "V3"]),
        st.booleans(),
        st.integers(0, 900),  # minutes: several dwells and caps
        st.booleans(),  # retried delivery
    ),
    max_size=40,
)


def events_of(raw: list) -> list[Ev]:  # type: ignore[type-arg]
    events = []
    for i, (person, venue, is_in, minute, retried) in enumerate(raw):
        e = Ev(f"s{i:03d}", person, venue, is_in, minute * M)
        events.append(e)
        if retried:
            events.append(e)
    return events


def assert_oracle(store: FakeStore, events: list[Ev]) -> None:
    visits, outcomes = oracle_pairing(events, DWELL, CAPS)
    assert store.visible() == visits
    assert store.current_outcomes() == outcomes


@settings(max_examples=300, deadline=None)
@given(event_lists, st.integers(1, 6), st.integers(1, 4), st.randoms(use_true_random=False))
def test_any_order_batching_and_partitioning_gives_the_oracle(raw, splits, partitions, rnd) -> None:  # type: ignore[no-untyped-def]
    events = events_of(raw)
    delivery = list(events)
    rnd.shuffle(delivery)  # every event within 15 hours of the others: well inside the 48 h window
    assert_oracle(run(delivery, splits=splits, partitions=partitions), events)


@settings(max_examples=300, deadline=None)
@given(event_lists, st.integers(1, 6), st.randoms(use_true_random=False))
def test_checkins_later_than_the_window_pair_with_the_store(raw, splits, rnd) -> None:  # type: ignore[no-untyped-def]
    """With a two-hour window most late check-ins miss the state and re-pair from the stored history."""
    events = events_of(raw)
    delivery = list(events)
    rnd.shuffle(delivery)
    proc, store = processor(window_us=2 * H), FakeStore()
    for chunk in np.array_split(np.arange(len(delivery)), splits):
        store.apply(proc.process(batch_of([delivery[j] for j in chunk]), history=store.history))
    visits, outcomes = oracle_pairing(events, DWELL, CAPS)
    assert store.visible() == visits
    assert store.current_outcomes() == outcomes


def test_pairing_in_order_equals_the_plain_oracle() -> None:
    events = [Ev("a", "p", "V1", True, 0), Ev("b", "p", "V1", False, 30 * M), Ev("c", "p", "V1", True, 40 * M)]
    assert {v[:4] for v in run(events).visible()} == oracle_visits(events, DWELL, CAPS)


# -- zones: a visit keeps its opener's zone; an `in` at another zone of the venue is a new visit there ------
def zoned_visible(store: FakeStore, zones: dict[tuple, str]) -> set[tuple]:
    """The store's visits with the zone each row carries (`zones` collected from the emitted rows)."""
    return {(*v, zones[(v[1], v[0], v[2], v[4])]) for v in store.visible()}


def run_zoned(events: list[Ev], splits: int = 1, partitions: int = 1) -> tuple[FakeStore, dict[tuple, str]]:
    procs = [processor() for _ in range(partitions)]
    store, zones = FakeStore(), {}
    for chunk in np.array_split(np.arange(len(events)), splits):
        batch = batch_of([events[j] for j in chunk], seq0=int(chunk[0]) if len(chunk) else 0)
        part = np.array([partition_of(v, partitions) for v in batch.venue_id.tolist()], dtype=np.int64)
        for p, proc in enumerate(procs):
            out = proc.process(batch.take(np.flatnonzero(part == p)), history=store.history)
            v = out.visits
            for venue, person, start, opened_by, zone in zip(v.venue_id, v.person, v.start_us, v.opened_by, v.zone,
                                                             strict=True):  # fmt: skip
                zones[(venue, person, int(start), opened_by)] = zone
            store.apply(out)
    return store, zones


def test_an_in_at_another_zone_closes_the_open_visit_and_opens_one_there() -> None:
    events = [
        Ev("a", "p", "V1", True, 0, "Khu A"),
        Ev("b", "p", "V1", True, 10 * M, "Khu A"),  # same zone within dwell: a repeat scan
        Ev("c", "p", "V1", True, 20 * M, "Khu B"),  # another section of the market: a new visit
        Ev("d", "p", "V1", False, 50 * M, "Khu A"),  # an `out` closes whatever is open
    ]
    store, zones = run_zoned(events)
    assert zoned_visible(store, zones) == {("p", "V1", 0, 20 * M, "a", "Khu A"),
                                           ("p", "V1", 20 * M, 50 * M, "c", "Khu B")}  # fmt: skip
    assert store.current_outcomes() == {"a": "opened", "b": "repeat", "c": "opened", "d": "closed"}


def test_a_zone_change_after_the_dwell_ends_the_open_visit_at_its_dwell() -> None:
    store, zones = run_zoned([Ev("a", "p", "V2", True, 0, "X"), Ev("b", "p", "V2", True, 40 * M, "Y")])
    assert zoned_visible(store, zones) == {("p", "V2", 0, 30 * M, "a", "X"), ("p", "V2", 40 * M, 70 * M, "b", "Y")}


zoned_event_lists = st.lists(
    st.tuples(
        st.sampled_from(["p1", "p2"]),
        st.sampled_from(["V1", "V2", "V3"]),
        st.booleans(),
        st.integers(0, 600),
        st.booleans(),
        st.sampled_from(["", "A", "B"]),  # "" = the venue as a whole (its main QR)
    ),
    max_size=40,
)


def zoned_events_of(raw: list) -> list[Ev]:  # type: ignore[type-arg]
    events = []
    for i, (person, venue, is_in, minute, retried, zone) in enumerate(raw):
        e = Ev(f"s{i:03d}", person, venue, is_in, minute * M, zone)
        events.append(e)
        if retried:
            events.append(e)
    return events


@settings(max_examples=300, deadline=None)
@given(zoned_event_lists, st.integers(1, 6), st.integers(1, 4), st.randoms(use_true_random=False))
def test_zoned_checkins_in_any_order_batching_and_partitioning_give_the_oracle(raw, splits, partitions, rnd) -> None:  # type: ignore[no-untyped-def]
    events = zoned_events_of(raw)
    delivery = list(events)
    rnd.shuffle(delivery)
    store, zones = run_zoned(delivery, splits=splits, partitions=partitions)
    visits, outcomes = oracle_zoned_pairing(events, DWELL, CAPS)
    assert zoned_visible(store, zones) == visits
    assert store.current_outcomes() == outcomes


@settings(max_examples=200, deadline=None)
@given(zoned_event_lists, st.integers(1, 6), st.randoms(use_true_random=False))
def test_zoned_checkins_later_than_the_window_pair_with_the_store(raw, splits, rnd) -> None:  # type: ignore[no-untyped-def]
    """Keys re-read from the store keep their check-ins' zones (the stored history carries zone)."""
    events = zoned_events_of(raw)
    delivery = list(events)
    rnd.shuffle(delivery)
    proc, store, zones = processor(window_us=2 * H), FakeStore(), {}
    for chunk in np.array_split(np.arange(len(delivery)), splits):
        out = proc.process(batch_of([delivery[j] for j in chunk]), history=store.history)
        v = out.visits
        for venue, person, start, opened_by, zone in zip(v.venue_id, v.person, v.start_us, v.opened_by, v.zone,
                                                         strict=True):  # fmt: skip
            zones[(venue, person, int(start), opened_by)] = zone
        store.apply(out)
    visits, outcomes = oracle_zoned_pairing(events, DWELL, CAPS)
    assert zoned_visible(store, zones) == visits
    assert store.current_outcomes() == outcomes

