"""What people read in a terminal (issue: the house in order, items 2-4): local times as `05/12 07:42`,
trace evidence naming its venue, and a coverage table that stays whole in 80 columns. Pure: no store."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from rich.cells import cell_len
from rich.console import Console

from qrtrace import render
from qrtrace.domain.categories import load_categories
from qrtrace.i18n import t
from qrtrace.queries.coverage import CommuneCoverage, CoverageReport, OfficeCoverage, SilentVenue
from qrtrace.settings import VIETNAM, Settings
from tests.conftest import REPO


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


# -- coverage at 80 columns --------------------------------------------------------------------------------
def _coverage_report(lang: str) -> CoverageReport:
    """Son Duong's 31 communes with big numbers and every commune's silent venues of the longest kinds."""
    with (REPO / "qrtrace" / "data" / "son_duong_communes.csv").open(encoding="utf-8") as fh:
        communes = [(r["commune_code"], r["name_vi"]) for r in csv.DictReader(fh)]
    longest = sorted(load_categories().values(), key=lambda c: -len(c.name(lang)))[:5]
    rows = [CommuneCoverage(code, name, 1_234, 987, 1_234_567, 123_456) for code, name in communes]
    silent = [SilentVenue(f"V{code}{i}", "x", c.code, code) for code, _ in communes for i, c in enumerate(longest)]
    offices = [OfficeCoverage(o, name, 12_345, 9_876, 12_345_678) for o, name in
               (("commune_committee", "UBND xã, thị trấn"), ("education", "Phòng GD&ĐT, Phòng LĐ-TB&XH"))]  # fmt: skip
    as_of = _us("2021-07-21T00:00:00+07:00")
    return CoverageReport(as_of, as_of - 86_400_000_000, lang, [], rows, offices, [rows[0]], silent)


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_coverage_table_fits_80_columns_one_line_per_commune(lang: str) -> None:
    report = _coverage_report(lang)
    console = _console(80)
    render.coverage_tables(console, report, Settings(lang=lang))
    lines = _text(console).splitlines()
    assert max(cell_len(line) for line in lines) <= 80
    assert "…" not in _text(console)  # rich cut nothing short
    assert f"{t('period', lang)}: 20/07 00:00 → 21/07 00:00" in lines[0]
    for c in report.communes:  # each commune on one line: its name whole, with its figures
        (line,) = [line for line in lines if f"{c.name} ({c.commune_code})" in line and "│" in line]
        assert "1,234,567" in line and "123,456" in line and "80%" in line and line.rstrip().endswith(" 5"), line
    header = " ".join(lines[1 : lines.index(next(x for x in lines if x.startswith("━")))])
    words = set(header.replace("┃", " ").split())
    for key in ("commune", "registered_short", "active", "active_share", "scans", "people", "silent_short"):
        assert set(t(key, lang).split()) <= words, (key, header)  # wrapped at spaces, never cut inside a word


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_a_wide_coverage_table_names_the_silent_kinds_whole(lang: str) -> None:
    report = _coverage_report(lang)
    console = _console(200)
    render.coverage_tables(console, report, Settings(lang=lang))
    out = _text(console)
    assert t("silent_kinds", lang) in out
    names = {c.name(lang) for c in load_categories().values()}
    (line,) = [line for line in out.splitlines() if "Sơn Dương (02536)" in line and "│" in line]
    kinds = line.split("│")[-1].strip()
    shown, _, more = kinds.partition(" (+")
    assert all(name in names for name in shown.split("; ")), kinds  # whole names only
    assert more and int(more.split()[0]) == 5 - len(shown.split("; "))


def test_whole_names_never_cuts_a_name() -> None:
    assert render.whole_names(["Chợ", "Trường học", "Bệnh viện"], 30) == "Chợ; Trường học; Bệnh viện"
    assert render.whole_names(["Chợ", "Trường học", "Bệnh viện"], 20) == "Chợ; Trường học (+1)"
    assert render.whole_names(["Chợ", "Trường học", "Bệnh viện"], 19) == "Chợ (+2)"
    assert render.whole_names(["A very long name indeed"], 5) == "A very long name indeed"
    assert render.whole_names([], 10) == ""


def test_a_stored_case_without_contacts_reads_back_as_none() -> None:
    """A case whose trace found nobody has no exposure rows: its document lists no contacts (it used to
    fail on the empty rows)."""
    import numpy as np

    from qrtrace.render import trace_doc_from_rows
    from qrtrace.settings import VIETNAM

    empty = {k: np.empty(0, dtype=object if k in ("person", "venue_id", "source_person") else np.int64)
             for k in ("person", "hop", "first_exposure_us", "venue_id", "start_us", "end_us", "overlap_us",
                       "source_person", "source_hop")}  # fmt: skip
    assert trace_doc_from_rows({"case_id": "c"}, empty, VIETNAM)["contacts"] == []
