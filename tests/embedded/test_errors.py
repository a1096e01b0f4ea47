"""Bad input: one clear line, a non-zero exit, no traceback, the dead-letter store, nothing lost."""

from __future__ import annotations

import json

import pytest

from qrtrace.settings import Settings
from tests.conftest import SMALL_WAVE
from tests.embedded.conftest import REPLAY_2021

pytestmark = pytest.mark.embedded

GOOD = {
    "scan_id": "g1",
    "venue_id": "VN4675010",
    "person_id": "0912345678",
    "direction": "in",
    "event_time": "2021-07-20T08:00:00+07:00",
    "mode": "venue_qr",
    "scanner_id": "S1",
}


def one_error_line(proc) -> str:  # type: ignore[no-untyped-def]
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_unknown_category_is_a_clear_error_and_keeps_what_was_stored(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "s"
    cli("venues", "import", str(SMALL_WAVE / "venues.csv"), store=store)
    bad = tmp_path / "bad.csv"
    bad.write_text("venue_id,name,category,commune_code,capacity\nX1,Quán X,casino,02536,10\n")
    line = one_error_line(cli("venues", "import", str(bad), store=store, check=False))
    assert "casino" in line and "category" in line
    from qrtrace.embedded import EmbeddedRuntime

    with EmbeddedRuntime(Settings(store=str(store))) as rt:
        assert len(rt.venues()) == 4


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("ingest", "/nonexistent.jsonl"), "does not exist"),
        (("trace", "0912345678", "--from", "yesterday", "--to", "2021-07-21T00:00:00+07:00"), "ISO 8601"),
        (
            (
                "trace",
                "0912345678",
                "--from",
                "2021-07-22T00:00:00+07:00",
                "--to",
                "2021-07-21T00:00:00+07:00",
            ),
            "before",
        ),
        (("qr", "NOPE", "-o", "x.png"), "not registered"),
        (("report", "coverage", "--lang", "fr"), "vi or en"),
    ],
)
def test_cli_errors_are_one_sentence(cli, tmp_path, args, fragment) -> None:  # type: ignore[no-untyped-def]
    assert fragment in one_error_line(cli(*args, store=tmp_path / "s", check=False))


def test_bad_records_are_dead_lettered_with_reasons_and_counted(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "s"
    cli("venues", "import", str(SMALL_WAVE / "venues.csv"), store=store)
    records = [
        json.dumps(GOOD),
        "{not json",
        json.dumps({**GOOD, "scan_id": "b1", "direction": "sideways"}),
        json.dumps({**GOOD, "scan_id": "b2", "event_time": "2021-07-20T08:00:00"}),
        json.dumps({**GOOD, "scan_id": "b3", "venue_id": "VN0000000"}),
        json.dumps({k: v for k, v in {**GOOD, "scan_id": "b4"}.items() if k != "person_id"}),
        json.dumps({**GOOD, "scan_id": "b5", "person_id": 912345678}),
        json.dumps({**GOOD, "scan_id": "b6", "direction": "out", "person_id": "0900000001"}),
        "[1, 2]",
    ]
    f = tmp_path / "mixed.jsonl"
    f.write_text("\n".join(records) + "\n")
    report = json.loads(cli("ingest", str(f), "--json", store=store, env=REPLAY_2021).stdout)
    assert report["received"] == 9 and report["accepted"] == 1 and report["dead_lettered"] == 7
    assert report["unpaired"] == 1 and report["unpaired_reasons"] == {"unmatched_checkout": 1}  # may still pair
    assert report["reasons"] == {
        "malformed_json": 1,
        "bad_direction": 1,
        "bad_event_time": 1,
        "unknown_venue": 1,
        "missing_field": 1,
        "wrong_type": 1,
        "not_an_object": 1,
    }
    from qrtrace.embedded import EmbeddedRuntime

    with EmbeddedRuntime(Settings(store=str(store))) as rt:
        stored = rt.store.query("SELECT reason, count() AS n FROM qrtrace.dead_letters FINAL GROUP BY reason")
        assert dict(zip(stored["reason"], stored["n"], strict=True)) == report["reasons"]
        assert rt.store.query("SELECT count() AS n FROM qrtrace.visits_by_person FINAL")["n"] == [1]
