"""`repair_state`: a partition state written before event times were bounded loses what came from the
future and keeps everything else, so pairing goes on as if the future scans never arrived."""

from __future__ import annotations

from qrtrace.stream_processors.batch import US_PER_DAY, US_PER_MINUTE
from qrtrace.stream_processors.pipeline import CheckinProcessor, ProcessorConfig
from qrtrace.stream_processors.state_repair import repair_state
from tests.oracles import Ev
from tests.stream_processors.test_pairing import batch_of, final_visits

M = US_PER_MINUTE
NOW = 1_000 * US_PER_DAY  # the receiving clock (plus tolerance) at repair time
FAR = NOW + 3000 * 365 * US_PER_DAY
WINDOW = 15 * M


def office() -> CheckinProcessor:
    # No future bound here: the point is a state written without one.
    return CheckinProcessor(ProcessorConfig({"V1": 480 * M, "V2": 480 * M}, {"V1": 100, "V2": 100},
                                            allowed_lateness_us=0, cap_us_by_venue={"V1": 1440 * M}))  # fmt: skip


def test_an_open_visit_survives_repair_and_closes_normally() -> None:
    proc = office()
    outs = [proc.process(batch_of([Ev("a", "p", "V1", True, NOW - 60 * M)]))]
    # The year-9999 scan, at another venue (at its own venue it prunes every scan id and open visit at once:
    # lost for good, which is why the edge refuses it now).
    outs.append(proc.process(batch_of([Ev("f", "q", "V2", True, FAR)], seq0=1)))
    report = repair_state(proc.state, NOW, WINDOW, 1440 * M)
    assert report.clock_before_us == FAR and report.clock_after_us == NOW - 60 * M
    assert report.open_visits_dropped == 1 and report.scans_forgotten == 1
    outs.append(proc.process(batch_of([Ev("b", "p", "V1", False, NOW + 60 * M)], seq0=2)))
    outs.append(proc.flush())
    assert ("p", "V1", NOW - 60 * M, NOW + 60 * M) in final_visits(outs)
    assert not [d for o in outs[2:] for d in o.dead_letters]


def test_a_future_repeat_scan_of_a_visit_opened_in_time_keeps_the_visit() -> None:
    proc = office()
    outs = [proc.process(batch_of([Ev("a", "p", "V1", True, NOW - 60 * M), Ev("r", "p", "V1", True, NOW + 10 * M)]))]
    report = repair_state(proc.state, NOW, WINDOW, 1440 * M)
    assert report.open_visits_dropped == 0  # the repeat scan is forgotten, the visit is not
    outs.append(proc.process(batch_of([Ev("b", "p", "V1", False, NOW - 30 * M)], seq0=2)))
    outs.append(proc.flush())
    assert ("p", "V1", NOW - 60 * M, NOW - 30 * M) in final_visits(outs)


def test_held_future_events_are_returned_for_the_dead_letters_and_a_second_repair_does_nothing() -> None:
    proc = CheckinProcessor(ProcessorConfig({"V1": 60 * M}, {"V1": 100}, allowed_lateness_us=30 * M))
    proc.process(batch_of([Ev("a", "p", "V1", True, NOW - 10 * M), Ev("f", "q", "V1", True, FAR)]))
    first = repair_state(proc.state, NOW, WINDOW, 1440 * M)  # "f" was held: the watermark is FAR - 30 min
    assert first.held_events.scan_id.tolist() == ["f"] and first.held_dropped == 1
    assert not proc.state.holding
    second = repair_state(proc.state, NOW, WINDOW, 1440 * M)
    assert not second.changed
