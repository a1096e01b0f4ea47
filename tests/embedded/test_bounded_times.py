"""The red-team sequence of issue 10 through the real CLI and chDB: a far-future check-in, a 61-year
visit, then a trace. Before: the visit was stored, the partition clock jumped to year 9999 and every
trace failed. Now: dead letters with reasons, an untouched clock, and the worked example's cohort; a
store written without the bounds is repaired by `qrtrace repair`."""

from __future__ import annotations

import json
import shlex

import pytest

from tests.conftest import SMALL_WAVE
from tests.embedded.conftest import REPLAY_2021

pytestmark = pytest.mark.embedded

ATTACKER = "0999000111"
VENUE = "VN4675010"  # where the worked example's case sang karaoke on 2021-07-20


def scan(scan_id: str, direction: str, event_time: str, person: str = ATTACKER, venue: str = VENUE) -> str:
    return json.dumps({"scan_id": scan_id, "venue_id": venue, "person_id": person, "direction": direction,
                       "event_time": event_time, "mode": "personal_qr", "scanner_id": "S-red"})  # fmt: skip


def counts(proc) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(proc.stdout[proc.stdout.index("{") :])


def expected_cohort(cli, store, env) -> tuple[set, set]:  # type: ignore[no-untyped-def]
    expected = json.loads((SMALL_WAVE / "expected.json").read_text())
    got = json.loads(cli(*shlex.split(expected["command"])[1:], store=store, env=env).stdout)
    have = {(c["person_id"], c["hop"]) for c in got["contacts"]}
    return have, {(c["person_id"], c["hop"]) for c in expected["contacts"]}


def test_far_future_and_decades_long_visit_are_dead_letters_and_traces_work(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "store"
    cli("venues", "import", str(SMALL_WAVE / "venues.csv"), store=store)
    cli("ingest", str(SMALL_WAVE / "events.jsonl"), store=store, env=REPLAY_2021)
    attack = tmp_path / "attack.jsonl"
    attack.write_text("\n".join([
        scan("red-1", "in", "9999-12-31T23:59:59+14:00"),
        scan("red-2", "in", "1960-01-01T08:00:00+07:00"),
        scan("red-3", "out", "2021-07-22T08:00:00+07:00"),
    ]) + "\n")  # fmt: skip
    got = counts(cli("ingest", str(attack), "--json", store=store, env=REPLAY_2021))
    assert got["dead_lettered"] == 2 and got["visits_written"] == 0
    assert got["reasons"] == {"event_time_in_future": 1, "event_time_too_old": 1}
    # The check-out closes nothing, and waits: an earlier check-in may still arrive within the window.
    assert got["unpaired"] == 1 and got["unpaired_reasons"] == {"unmatched_checkout": 1}
    have, want = expected_cohort(cli, store, REPLAY_2021)
    assert have == want
    # The clock did not move: the example's scans are still remembered, so sending them again stores nothing.
    again = counts(cli("ingest", str(SMALL_WAVE / "events.jsonl"), "--json", store=store, env=REPLAY_2021))
    assert again["accepted"] == 0 and again["deduplicated"] == 150


def test_a_store_written_without_bounds_is_repaired(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "store"
    # An older qrtrace, as it were: no window (a clock in year 9999, retention of millennia), no visit cap.
    legacy = {"QRTRACE_NOW": "9999-12-31T12:00:00+00:00", "QRTRACE_RETENTION_DAYS": "3000000",
              "QRTRACE_VISIT_CAP_FACTOR": "1000000"}  # fmt: skip
    cli("venues", "import", str(SMALL_WAVE / "venues.csv"), store=store)
    cli("ingest", str(SMALL_WAVE / "events.jsonl"), store=store, env=legacy)
    attack = tmp_path / "attack.jsonl"
    attack.write_text("\n".join([
        scan("red-1", "in", "2021-07-14T06:00:00+07:00"),
        scan("red-2", "out", "2021-07-24T06:00:00+07:00"),  # a ten-day karaoke visit over the case's
        json.dumps({"scan_id": "red-3", "venue_id": "VN2829422", "person_id": "0999000222", "direction": "in",
                    "event_time": "9999-12-31T23:59:59+14:00", "mode": "venue_qr", "scanner_id": "S-red"}),
    ]) + "\n")  # fmt: skip
    stored = counts(cli("ingest", str(attack), "--json", store=store, env=legacy))
    assert stored["dead_lettered"] == 0 and stored["visits_written"] >= 2  # the holes, as they were
    # Traces already cope: the reader caps visit lengths, so the ten-day visit drags nobody in.
    have, want = expected_cohort(cli, store, REPLAY_2021)
    assert have == want
    report = json.loads(cli("repair", "--json", store=store, env=REPLAY_2021).stdout)
    assert report["future_checkins"] == 1
    assert report["visits_shortened"] == 1
    assert report["state"]["clock_before"].startswith("9999-12-31")
    assert report["clock"] == "2021-07-25T12:00:00+07:00"
    assert report["state"]["clock_after"] <= "2021-07-25T12:05:00+07:00"
    have, want = expected_cohort(cli, store, REPLAY_2021)
    assert have == want
    twice = json.loads(cli("repair", "--json", store=store, env=REPLAY_2021).stdout)
    assert twice["future_checkins"] == 0 and twice["visits_shortened"] == 0
    # After the repair new check-ins pair by the normal clock: a karaoke visit today closes as usual.
    today = tmp_path / "today.jsonl"
    today.write_text("\n".join([scan("ok-1", "in", "2021-07-25T10:00:00+07:00"),
                                scan("ok-2", "out", "2021-07-25T11:00:00+07:00")]) + "\n")  # fmt: skip
    fresh = counts(cli("ingest", str(today), "--json", store=store, env=REPLAY_2021))
    assert fresh["accepted"] == 2 and fresh["dead_lettered"] == 0


def test_a_backlog_spanning_months_is_stored_whole(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """With a retention of a year, one batch may span 150 days: more day partitions than one ClickHouse
    insert may touch. It used to be refused after some tables were written; now it is stored whole."""
    store = tmp_path / "store"
    cli("venues", "import", str(SMALL_WAVE / "venues.csv"), store=store)
    backlog = tmp_path / "backlog.jsonl"
    days = [f"2021-{m:02d}-{d:02d}" for m in range(2, 8) for d in range(1, 26)][:150]
    backlog.write_text("".join(scan(f"b-{day}", "in", f"{day}T09:00:00+07:00") + "\n" for day in days))
    env = {**REPLAY_2021, "QRTRACE_RETENTION_DAYS": "365"}
    got = counts(cli("ingest", str(backlog), "--json", store=store, env=env))
    assert got["accepted"] == 150 and got["visits_written"] >= 150 and got["dead_lettered"] == 0


def test_the_ingest_report_counts_every_dead_letter(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Every line is counted once: received = accepted + deduplicated + unpaired + dead-lettered, with each
    reason (an over-cap check-out is unpaired until the window has passed, then a dead letter)."""
    store = tmp_path / "store"
    cli("venues", "import", str(SMALL_WAVE / "venues.csv"), store=store)
    f = tmp_path / "checkins.jsonl"
    f.write_text("\n".join([
        scan("cap-1", "in", "2021-07-21T02:00:00+07:00", venue="VN3865031"),
        scan("cap-2", "out", "2021-07-21T07:00:00+07:00", venue="VN3865031"),  # five hours at a bus stop: 4 h cap
        scan("cap-3", "in", "2021-07-25T13:00:00+07:00"),  # an hour ahead of the receiving clock
    ]) + "\n")  # fmt: skip
    got = counts(cli("ingest", str(f), "--json", store=store, env=REPLAY_2021))
    assert got["reasons"] == {"event_time_in_future": 1} and got["unpaired_reasons"] == {"checkout_after_cap": 1}
    assert got["accepted"] == 1 and got["dead_lettered"] == 1 and got["unpaired"] == 1
    assert got["received"] == got["accepted"] + got["deduplicated"] + got["unpaired"] + got["dead_lettered"]
