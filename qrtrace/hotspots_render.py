"""`qrtrace report hotspots` on the terminal and as JSON: the venue ranking as a table with a bar of its
windows over capacity, the communes, and each category's busiest hours as a 24-hour strip."""

from __future__ import annotations

from datetime import timezone

from rich.console import Console
from rich.table import Table
from rich.text import Text

from qrtrace.i18n import t
from qrtrace.queries.hotspots import HotspotReport
from qrtrace.render import iso, local_time

WIDE = 110  # from this console width the ranking also draws a bar of each venue's windows over capacity
BAR_WIDTH = 24  # characters of the longest bar
LEVELS = " ▁▂▃▄▅▆▇█"  # a category's hours, scaled to its own busiest hour
HOUR_RULER = "0     6     12    18  23"  # above a strip: 24 characters, 6, 12 and 18 start at their hour


def hotspots_dict(report: HotspotReport, tz: timezone) -> dict:
    """The report as JSON-ready data, times as ISO 8601 in the display zone."""
    d = report.to_dict()
    d["as_of"] = iso(report.as_of_us, tz)
    d["since"] = iso(report.since_us, tz)
    for venue in d["venues"]:
        venue["peak_at"] = iso(venue["peak_window_us"], tz)
    return d


def bar(value: float, largest: float, width: int = BAR_WIDTH) -> str:
    """A bar of whole and eighth blocks, `width` characters for `largest`; a non-zero value shows at least one."""
    if largest <= 0 or value <= 0:
        return ""
    eighths = max(1, round(value / largest * width * 8))
    return "█" * (eighths // 8) + ("" if eighths % 8 == 0 else "▏▎▍▌▋▊▉"[eighths % 8 - 1])


def strip(values: list[float]) -> str:
    """24 hours as one character each, from blank (nobody) to a full block (the busiest hour)."""
    top = max(values, default=0)
    if top <= 0:
        return " " * len(values)
    return "".join(LEVELS[0] if v <= 0 else LEVELS[max(1, round(v / top * (len(LEVELS) - 1)))] for v in values)


def hotspots_tables(console: Console, report: HotspotReport, lang: str, tz: timezone) -> None:
    """The ranking (with a bar chart of windows over capacity), the communes, and the busiest hours."""
    console.print(
        f"[bold]{t('hotspots_title', lang)}[/]  {t('period', lang)}: "
        f"{local_time(report.since_us, tz)} → {local_time(report.as_of_us, tz)}"
    )
    if not report.venues:
        console.print(t("no_hotspots", lang))
        return
    table = Table(show_edge=False, pad_edge=False, title=t("hotspots_rank", lang).format(minutes=report.window_minutes))
    table.add_column(t("venue", lang))
    table.add_column(t("commune", lang))
    for key in ("over_short", "peak_present", "capacity", "peak_ratio_short"):
        table.add_column(t(key, lang), justify="right")
    table.add_column(t("peak_at", lang), no_wrap=True)
    wide = console.width >= WIDE
    if wide:
        table.add_column("", no_wrap=True)
    largest = max(v.over_capacity_windows for v in report.venues)
    for v in report.venues:
        ratio = f"{v.peak_ratio:.0%}" if v.peak_ratio is not None else "–"
        cells = [Text(v.name), Text(v.commune_name), f"{v.over_capacity_windows:,}", f"{v.peak_present:,}",
                 f"{v.capacity:,}" if v.capacity else "–", ratio, local_time(v.peak_window_us, tz)]  # fmt: skip
        if wide:
            cells.append(Text(bar(v.over_capacity_windows, largest), style="red"))
        table.add_row(*cells, style="bold red" if v.over_capacity_windows else "")
    console.print(table)
    if report.venues_total > len(report.venues):
        console.print(t("hotspots_more", lang).format(shown=len(report.venues), total=report.venues_total))
    communes = Table(show_edge=False, pad_edge=False, title=t("hotspot_communes", lang))
    communes.add_column(t("commune", lang))
    for key in ("venues_over", "over_short", "peak_ratio_short"):
        communes.add_column(t(key, lang), justify="right")
    for c in report.communes:
        ratio = f"{c.peak_ratio:.0%}" if c.peak_ratio is not None else "–"
        communes.add_row(Text(f"{c.name} ({c.commune_code})"), f"{c.venues_over_capacity:,}",
                         f"{c.over_capacity_windows:,}", ratio)  # fmt: skip
    console.print(communes)
    hours = Table(show_edge=False, pad_edge=False, title=t("busiest_hours", lang))
    hours.add_column(t("category", lang))
    hours.add_column(HOUR_RULER, no_wrap=True)
    hours.add_column(t("busiest_hour", lang), justify="right")
    for c in report.categories:
        hours.add_row(Text(c.name), Text(strip(c.mean_present), style="yellow"),
                      f"{c.busiest_hour:02d}:00 · {c.mean_present[c.busiest_hour]:.2f}")  # fmt: skip
    console.print(hours)
