"""The hotspots report's terminal pieces (qrtrace/hotspots_render.py): bars, 24-hour strips, the JSON times."""

from __future__ import annotations

from datetime import timedelta, timezone

from rich.console import Console

from qrtrace.hotspots_render import BAR_WIDTH, HOUR_RULER, bar, hotspots_dict, hotspots_tables, strip
from qrtrace.queries.hotspots import build_hotspots

VN = timezone(timedelta(hours=7))
AS_OF = 1_626_886_800_000_000  # 2021-07-22T00:00:00+07:00
ROW = {"venue_id": "HS1", "name": "Karaoke [bold]Ánh Dương[/]", "category": "karaoke", "commune_code": "02536",
       "capacity": 2, "windows": 3, "over_capacity_windows": 1, "peak_present": 3,
       "peak_window_us": 1_626_786_900_000_000, "arrivals": 3}  # fmt: skip


def test_bars_and_strips() -> None:
    assert bar(5, 5) == "█" * BAR_WIDTH and bar(0, 5) == "" and bar(1, 0) == ""
    assert bar(1, 1000) == "▏"  # a non-zero value always shows
    assert bar(2.5, 5) == "█" * (BAR_WIDTH // 2)
    assert strip([0] * 24) == " " * 24
    hours = [0.0] * 24
    hours[20], hours[21] = 0.125, 0.0893
    shown = strip(hours)
    assert len(shown) == 24 and shown[20] == "█" and shown[21] == "▆" and shown[:20].strip() == ""
    assert len(HOUR_RULER) == 24 and HOUR_RULER.index("6") == 6 and HOUR_RULER.index("12") == 12


def test_json_times_and_tables_with_names_as_text() -> None:
    report = build_hotspots([ROW], [], [], {"02536": "Sơn Dương"}, None, as_of_us=AS_OF, days=7,
                            window_minutes=15, limit=20)  # fmt: skip
    d = hotspots_dict(report, VN)
    assert (d["since"], d["as_of"]) == ("2021-07-15T00:00:00+07:00", "2021-07-22T00:00:00+07:00")
    assert d["venues"][0]["peak_at"] == "2021-07-20T20:15:00+07:00"
    console = Console(width=130, record=True, color_system=None)
    hotspots_tables(console, report, "vi", VN)
    text = console.export_text()
    assert "Karaoke [bold]Ánh Dương[/]" in text  # a typed name is shown as typed, never as markup
    assert "150%" in text and "20/07 20:15" in text and "█" * BAR_WIDTH in text
    empty = build_hotspots([], [], [], {}, None, as_of_us=AS_OF, days=7, window_minutes=15, limit=20)
    console = Console(width=80, record=True, color_system=None)
    hotspots_tables(console, empty, "en", VN)
    assert "No window held anyone in this period." in console.export_text()
