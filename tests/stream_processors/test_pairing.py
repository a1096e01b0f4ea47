"""Dedupe and pairing: exact visits for retried and double scans, missing check-outs; property vs oracle."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from qrtrace.stream_processors.batch import (
    US_PER_MINUTE,
    VERSION_FINAL,
    CheckinBatch,
)
from qrtrace.stream_processors.pairing import LATE, REPEAT, UNMATCHED_OUT
from qrtrace.stream_processors.pipeline import CheckinProcessor, ProcessorConfig
from tests.oracles import Ev, oracle_visits

M = US_PER_MINUTE
DWELL = {"V1": 60 * M, "V2": 30 * M}


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
    )


def processor(lateness_min: int = 30) -> CheckinProcessor:
    return CheckinProcessor(ProcessorConfig(DWELL, {"V1": 2, "V2": 50}, allowed_lateness_us=lateness_min * M))


def final_visits(outputs) -> set[tuple[str, str, int, int]]:  # type: ignore[no-untyped-def]
    """Latest version per visit key, as ReplacingMergeTree FINAL would keep."""
    latest: dict[tuple[str, str, int, str], tuple[int, int]] = {}
    for out in outputs:
        v = out.visits
        rows = zip(v.venue_id, v.person, v.start_us, v.end_us, v.version, v.opened_by, strict=True)
        for venue, person, start, end, ver, opened_by in rows:
            key = (venue, person, int(start), opened_by)
            if key not in latest or int(ver) >= latest[key][0]:
                latest[key] = (int(ver), int(end))
    return {(p, venue, s, e) for (venue, p, s, _), (_, e) in latest.items()}


def run(events: list[Ev], splits: int = 1, lateness_min: int = 30):  # type: ignore[no-untyped-def]
    proc = processor(lateness_min)
    outs = []
    for chunk in np.array_split(np.arange(len(events)), splits):
        outs.append(proc.process(batch_of([events[j] for j in chunk], seq0=int(chunk[0]) if len(chunk) else 0)))
    outs.append(proc.flush())
    return outs


def test_retried_scan_and_double_scan_give_one_visit() -> None:
    events = [
        Ev("a", "p", "V1", True, 0),
        Ev("a", "p", "V1", True, 0),  # retried delivery: same scan_id
        Ev("b", "p", "V1", True, 5 * M),  # double scan while open: repeat
        Ev("c", "p", "V1", False, 40 * M),
    ]
    outs = run(events)
    assert final_visits(outs) == {("p", "V1", 0, 40 * M)}
    assert sum(o.retried for o in outs) == 1
    outcomes = [x for o in outs for x in o.outcome.tolist()]
    assert outcomes.count(REPEAT) == 1


def test_missing_checkout_ends_at_dwell_and_late_in_after_dwell_splits_visits() -> None:
    events = [Ev("a", "p", "V2", True, 0), Ev("b", "p", "V2", True, 31 * M), Ev("c", "q", "V2", True, 0)]
    assert final_visits(run(events)) == {
        ("p", "V2", 0, 30 * M),
        ("p", "V2", 31 * M, 61 * M),
        ("q", "V2", 0, 30 * M),
    }


def test_unmatched_checkout_is_a_dead_letter() -> None:
    outs = run([Ev("z", "p", "V1", False, 10 * M)])
    letters = [d for o in outs for d in o.dead_letters]
    assert [d.reason for d in letters] == [UNMATCHED_OUT]
    assert final_visits(outs) == set()


def test_provisional_visit_is_replaced_when_checkout_arrives_in_a_later_batch() -> None:
    proc = processor(lateness_min=0)
    first = proc.process(batch_of([Ev("a", "p", "V1", True, 0)]))
    assert first.visits.version.tolist() == [0] and first.visits.end_us.tolist() == [60 * M]
    second = proc.process(batch_of([Ev("b", "p", "V1", False, 90 * M)], seq0=1))
    assert second.visits.version.tolist() == [VERSION_FINAL]
    assert second.visits.end_us.tolist() == [90 * M]
    assert second.visits.previous_end_us.tolist() == [60 * M]
    # occupancy moved the span: windows up to 90 minutes now hold the visit
    present = {int(w): int(p) for w, p in zip(second.occupancy.window_start_us, second.occupancy.present, strict=True)}
    assert present[75 * M] == 1


def test_event_later_than_allowed_lateness_is_dead_lettered_not_misapplied() -> None:
    proc = processor(lateness_min=0)
    proc.process(batch_of([Ev("a", "p", "V1", True, 10 * M), Ev("b", "p", "V1", False, 20 * M)]))
    late = proc.process(batch_of([Ev("c", "p", "V1", True, 5 * M)], seq0=2))
    late_flush = proc.flush()
    reasons = [d.reason for d in late.dead_letters + late_flush.dead_letters]
    assert reasons == [LATE]


def test_over_capacity_flag() -> None:
    events = [Ev(f"s{i}", f"p{i}", "V1", True, 0) for i in range(3)]
    outs = run(events)
    occ = [o.occupancy for o in outs if len(o.occupancy)][-1]
    assert occ.present.max() == 3 and occ.over_capacity.any()  # V1 capacity is 2


# -- property: any batching and bounded-lateness delivery order gives the oracle's visits ------------------
event_lists = st.lists(
    st.tuples(
        st.sampled_from(["p1", "p2", "p3"]),
        st.sampled_from(["V1", "V2"]),
        st.booleans(),
        st.integers(0, 400),  # minutes
        st.booleans(),  # retried delivery
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(event_lists, st.integers(1, 5), st.randoms(use_true_random=False))
def test_streaming_pairing_equals_oracle(raw, splits, rnd) -> None:  # type: ignore[no-untyped-def]
    events = []
    for i, (person, venue, is_in, minute, retried) in enumerate(raw):
        e = Ev(f"s{i}", person, venue, is_in, minute * M)
        events.append(e)
        if retried:
            events.append(e)
    # delivery order: event-time order with each event delayed by up to 20 minutes (< allowed lateness 30)
    delivery = sorted(events, key=lambda e: e.t + rnd.randint(0, 20) * M)
    outs = run(delivery, splits=splits, lateness_min=30)
    assert final_visits(outs) == oracle_visits(sorted(delivery, key=lambda e: e.t), DWELL)
    assert not any(d.reason == LATE for o in outs for d in o.dead_letters)
