"""What people read in a terminal (issue: the house in order, items 2-3): local times as `05/12 07:42`
and trace evidence naming its venue. Pure: no store."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta, timezone

from rich.console import Console

from qrtrace import render
from qrtrace.settings import VIETNAM


def _us(text: str) -> int:
    return round(datetime.fromisoformat(text).timestamp() * 1_000_000)


def _console(width: int) -> Console:
    return Console(file=io.StringIO(), width=width, color_system=None, highlight=False)


def _text(console: Console) -> str:
    return console.file.getvalue()  # type: ignore[attr-defined]


# -- local times -------------------------------------------------------------------------------------------
def test_local_time_is_day_month_hour_minute_in_the_display_zone() -> None:
    us = _us("2021-12-05T00:42:59+00:00")
    assert render.local_time(us, VIETNAM) == "05/12 07:42"
    assert render.local_time(us, UTC) == "05/12 00:42"
    assert render.local_time("2021-12-04T19:42:00-05:00", VIETNAM) == "05/12 07:42"  # an ISO string, any offset
    assert render.local_time("2021-12-05T07:42:00", VIETNAM) == "05/12 07:42"  # no offset: read in the zone
    assert render.local_time(datetime(2021, 12, 5, 0, 42, tzinfo=UTC), VIETNAM) == "05/12 07:42"
    assert render.local_time(us, VIETNAM, year=True) == "05/12/2021 07:42"


def test_local_span_writes_the_day_once_unless_it_changes() -> None:
    assert render.local_span("2021-07-20T08:00:00+07:00", "2021-07-20T09:30:00+07:00", VIETNAM) == "20/07 08:00–09:30"
    assert render.local_span(_us("2021-07-20T23:40:00+07:00"), _us("2021-07-21T00:25:00+07:00"), VIETNAM) == (
        "20/07 23:40–21/07 00:25"
    )


# -- trace evidence ----------------------------------------------------------------------------------------
def _trace_doc(tz: timezone) -> dict:
    def iso(text: str) -> str:
        return render.iso(_us(text), tz)

    return {
        "case": "0912345678",
        "case_id": "C1",
        "window": {"from": iso("2021-07-18T00:00:00+07:00"), "to": iso("2021-07-21T00:00:00+07:00")},
        "contacts": [
            {
                "person_id": "0987654321",
                "hop": 1,
                "first_exposure": iso("2021-07-20T08:05:00+07:00"),
                "exposures": [
                    {"venue_id": "VN4675010", "start": iso("2021-07-20T08:05:00+07:00"),
                     "end": iso("2021-07-20T09:30:00+07:00"), "overlap_minutes": 85.0,
                     "source_person_id": "0912345678", "source_hop": 0},
                    {"venue_id": "VN0000001", "start": iso("2021-07-20T12:00:00+07:00"),
                     "end": iso("2021-07-20T12:30:00+07:00"), "overlap_minutes": 30.0,
                     "source_person_id": "0912345678", "source_hop": 0},
                ],
            },
            {
                "person_id": "[bold]QR-1",  # an identifier a scanner sent: text, not rich markup
                "hop": 2,
                "first_exposure": iso("2021-07-20T23:50:00+07:00"),
                "exposures": [
                    {"venue_id": "VN9999999", "start": iso("2021-07-20T23:50:00+07:00"),
                     "end": iso("2021-07-21T00:20:00+07:00"), "overlap_minutes": 30.0,
                     "source_person_id": "0987654321", "source_hop": 1},
                ],
            },
        ],
    }  # fmt: skip


def test_trace_table_names_the_venue_and_shows_local_times() -> None:
    console = _console(160)
    names = {"VN4675010": "Chợ Sơn Dương", "VN0000001": "Quán phở"}
    render.trace_tables(console, _trace_doc(VIETNAM), "en", VIETNAM, names)
    out = _text(console)
    assert "(18/07 00:00 → 21/07 00:00)" in out
    assert "Chợ Sơn Dương (VN4675010) 20/07 08:05–09:30, 85′ ← F0 0912345678 (+1)" in out
    assert "VN9999999 20/07 23:50–21/07 00:20, 30′ ← F1 0987654321" in out  # no registered name: the id alone
    assert "[bold]QR-1" in out and "20/07 08:05" in out
    assert not re.search(r"\d{4}-\d\d-\d\dT", out), out  # no ISO strings, whole or truncated


def test_trace_table_times_follow_the_display_zone() -> None:
    console = _console(160)
    utc = timezone(timedelta(0))
    render.trace_tables(console, _trace_doc(VIETNAM), "en", utc, {})
    assert "VN4675010 20/07 01:05–02:30" in _text(console)


def test_shown_venue_ids_are_the_first_exposures_a_table_shows() -> None:
    doc = _trace_doc(VIETNAM)
    assert render.shown_venue_ids([doc]) == {"VN4675010", "VN9999999"}
    assert render.shown_venue_ids([doc], limit=1) == {"VN4675010"}
