"""`repair_state`: a state written before event times were bounded loses what came from the future and
keeps everything else, so pairing goes on as if the future scans never arrived."""

from __future__ import annotations

from qrtrace.stream_processors.batch import US_PER_DAY, US_PER_MINUTE
from qrtrace.stream_processors.pipeline import CheckinProcessor, ProcessorConfig
from qrtrace.stream_processors.state_repair import repair_state
from tests.oracles import Ev
from tests.stream_processors.test_pairing import FakeStore, batch_of

M = US_PER_MINUTE
NOW = 1_000 * US_PER_DAY  # the receiving clock (plus tolerance) at repair time
FAR = NOW + 3000 * 365 * US_PER_DAY
WINDOW = 15 * M


def office() -> CheckinProcessor:
    # No future bound here: the point is a state written without one.
    return CheckinProcessor(ProcessorConfig({"V1": 480 * M, "V2": 480 * M}, {"V1": 100, "V2": 100},
                                            cap_us_by_venue={"V1": 1440 * M, "V2": 1440 * M}))  # fmt: skip


def run(proc: CheckinProcessor, store: FakeStore, events: list[Ev]) -> None:
    store.apply(proc.process(batch_of(events), history=store.history))


def test_a_future_scan_is_forgotten_and_the_open_visit_closes_normally() -> None:
    proc, store = office(), FakeStore()
    # The year-9999 scan at another venue (at its own venue it cuts every history at once: what was open
    # there is lost for good, which is why the edge refuses such scans now).
    run(proc, store, [Ev("a", "p", "V1", True, NOW - 60 * M), Ev("f", "q", "V2", True, FAR)])
    report = repair_state(proc.state, NOW, WINDOW, 1440 * M)
    assert report.clock_before_us == FAR and report.clock_after_us == NOW - 60 * M
    assert report.scans_forgotten == 1 and report.open_visits_dropped == 1
    assert "q" not in proc.state.venues["V2"].keys
    run(proc, store, [Ev("b", "p", "V1", False, NOW + 60 * M)])
    assert ("p", "V1", NOW - 60 * M, NOW + 60 * M, "a") in store.visible()


def test_a_future_repeat_scan_of_a_visit_opened_in_time_keeps_the_visit() -> None:
    proc, store = office(), FakeStore()
    run(proc, store, [Ev("a", "p", "V1", True, NOW - 60 * M), Ev("r", "p", "V1", True, NOW + 10 * M)])
    report = repair_state(proc.state, NOW, WINDOW, 1440 * M)
    assert report.open_visits_dropped == 0 and report.scans_forgotten == 1  # the repeat scan goes, not the visit
    run(proc, store, [Ev("b", "p", "V1", False, NOW - 30 * M)])
    assert ("p", "V1", NOW - 60 * M, NOW - 30 * M, "a") in store.visible()


def test_a_second_repair_does_nothing() -> None:
    proc, store = office(), FakeStore()
    run(proc, store, [Ev("a", "p", "V1", True, NOW - 10 * M), Ev("f", "q", "V2", True, FAR)])
    assert repair_state(proc.state, NOW, WINDOW, 1440 * M).changed
    assert not repair_state(proc.state, NOW, WINDOW, 1440 * M).changed
