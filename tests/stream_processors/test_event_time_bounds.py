"""Event times are bounded around the receiving clock; visits are capped; a venue's clock moves only with
accepted first deliveries (issue 10: one far-future scan used to stop pruning for good, one forged check-out
made a 67-year visit)."""

from __future__ import annotations

import orjson
import pytest

from qrtrace.errors import InputError
from qrtrace.settings import settings_from_env
from qrtrace.stream_processors.batch import US_PER_DAY, US_PER_MINUTE
from qrtrace.stream_processors.pairing import CHECKOUT_AFTER_CAP
from qrtrace.stream_processors.pipeline import EVENT_TIME_IN_FUTURE, CheckinProcessor, ProcessorConfig
from qrtrace.stream_processors.validate import EventTimeWindow, Validator, parse_lines
from tests.oracles import Ev
from tests.stream_processors.test_pairing import FakeStore, batch_of

M = US_PER_MINUTE
NOW = 1_800_000_000_000_000  # 2027-01-15 08:00 UTC, as UTC microseconds
WINDOW = EventTimeWindow(max_age_us=21 * US_PER_DAY, max_future_us=5 * M)


def line(scan: str, event_time: str, direction: str = "in") -> bytes:
    return orjson.dumps({"scan_id": scan, "venue_id": "V1", "person_id": "0912345678", "direction": direction,
                         "event_time": event_time, "mode": "venue_qr", "scanner_id": "s"})  # fmt: skip


def test_event_times_outside_the_window_are_refused_with_a_reason() -> None:
    lines = [
        line("future", "9999-12-31T23:59:59+14:00"),
        line("ancient", "1960-01-01T08:00:00+07:00"),
        line("fast-clock", "2027-01-15T15:04:00+07:00"),  # 4 minutes ahead: a phone's clock, accepted
        line("too-fast", "2027-01-15T15:06:00+07:00"),  # 6 minutes ahead
        line("three-weeks", "2026-12-25T14:59:00+07:00"),  # 21 days and a minute: older than retention
        line("yesterday", "2027-01-14T15:00:00+07:00"),
    ]
    valid, rejected = Validator({"V1"}, WINDOW).validate(parse_lines(lines), NOW)
    assert valid.scan_id.tolist() == ["fast-clock", "yesterday"]
    reasons = {r.record["scan_id"]: r.reason for r in rejected}  # type: ignore[index]
    assert reasons == {"future": "event_time_in_future", "ancient": "event_time_too_old",
                       "too-fast": "event_time_in_future", "three-weeks": "event_time_too_old"}  # fmt: skip
    assert all("receiv" in r.detail for r in rejected)  # a sentence naming the receiving clock


def test_without_a_clock_the_validator_checks_shape_only() -> None:
    valid, rejected = Validator({"V1"}, WINDOW).validate(parse_lines([line("a", "9999-12-31T23:59:59+14:00")]))
    assert len(valid) == 1 and not rejected


def capped(cap_min: int = 180, future_min: int | None = 5) -> CheckinProcessor:
    config = ProcessorConfig(
        {"V1": 60 * M},
        {"V1": 100},
        cap_us_by_venue={"V1": cap_min * M},
        max_future_us=None if future_min is None else future_min * M,
    )
    return CheckinProcessor(config)


def stored(proc: CheckinProcessor, *batches: list[Ev], now: int | None = None) -> FakeStore:
    store = FakeStore()
    for events in batches:
        store.apply(proc.process(batch_of(events), now, history=store.history))
    return store


def visits(store: FakeStore) -> set[tuple[str, str, int, int]]:
    return {v[:4] for v in store.visible()}


def test_a_checkout_after_the_cap_closes_nothing_and_is_a_dead_letter_once_final() -> None:
    proc = capped(cap_min=180)
    store = stored(proc, [Ev("a", "p", "V1", True, 0), Ev("b", "p", "V1", False, 181 * M)])
    assert store.current_outcomes()["b"] == CHECKOUT_AFTER_CAP
    assert visits(store) == {("p", "V1", 0, 60 * M)}  # the visit keeps its dwell end
    store.apply(proc.process(batch_of([Ev("z", "q", "V1", True, 181 * M + 2 * US_PER_DAY + 60 * M)])))
    assert list(store.letters.values()) == [CHECKOUT_AFTER_CAP]  # final once the window has passed
    ok = stored(capped(cap_min=180), [Ev("a", "p", "V1", True, 0), Ev("b", "p", "V1", False, 180 * M)])
    assert visits(ok) == {("p", "V1", 0, 180 * M)} and not ok.letters


def test_a_sixty_seven_year_visit_cannot_be_made() -> None:
    year = 365 * US_PER_DAY
    store = stored(capped(), [Ev("a", "p", "V1", True, -10 * year), Ev("b", "p", "V1", False, 57 * year)], now=NOW)
    assert max(e - s for _, _, s, e in visits(store)) == 60 * M


def test_events_from_the_future_are_refused_and_do_not_move_the_clock() -> None:
    proc = capped()
    out = proc.process(batch_of([Ev("f", "p", "V1", True, NOW + US_PER_DAY), Ev("a", "q", "V1", True, NOW - M)]), NOW)
    assert [d.reason for d in out.dead_letters] == [EVENT_TIME_IN_FUTURE]
    assert proc.state.venues["V1"].clock_us == NOW - M
    assert out.checkins.scan_id.tolist() == ["a"]


def test_a_retried_delivery_does_not_move_the_clock() -> None:
    proc = capped(future_min=None)
    proc.process(batch_of([Ev("a", "p", "V1", True, 10 * M)]))
    proc.process(batch_of([Ev("a", "p", "V1", True, 10**15)], seq0=1))  # the same scan_id again: a retry
    assert proc.state.venues["V1"].clock_us == 10 * M


def test_a_checkout_of_the_same_visit_arriving_late_still_closes_it() -> None:
    """A check-out after the cap closes nothing; an earlier check-out of the same visit arriving later does."""
    store = stored(capped(cap_min=180, future_min=None),
                   [Ev("a", "p", "V1", True, 0), Ev("b", "p", "V1", False, 200 * M)],
                   [Ev("c", "p", "V1", False, 100 * M)])  # fmt: skip
    assert visits(store) == {("p", "V1", 0, 100 * M)}
    assert store.current_outcomes() == {"a": "opened", "c": "closed", "b": "unmatched_checkout"}


def test_the_receiving_clock_reads_qrtrace_now() -> None:
    s = settings_from_env({"QRTRACE_NOW": "2021-07-25T12:00:00+07:00"})
    assert s.clock_us() == 1_627_189_200_000_000
    with pytest.raises(InputError, match="offset"):
        settings_from_env({"QRTRACE_NOW": "2021-07-25T12:00:00"})
    with pytest.raises(InputError, match="ISO 8601"):
        settings_from_env({"QRTRACE_NOW": "tomorrow"})
    assert settings_from_env({}).visit_cap_us(480) == 1440 * M  # an office: three times its dwell
    assert settings_from_env({}).visit_cap_us(15) == 240 * M  # an essential shop: the four-hour floor
