"""The coverage report as a PNG (Pillow): venues scanning per day, and each commune's share of venues
scanning, zero-scan communes in red. For the README, printed reports and e-mail, where SVG will not do."""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from qrtrace.domain.posters import _font_path
from qrtrace.queries.coverage import CommuneCoverage

RED, AMBER, GREEN, INK, GRID = (198, 40, 40), (249, 168, 37), (46, 125, 50), (29, 29, 31), (225, 225, 225)
LABELS = {
    "vi": ("Số địa điểm có quét mỗi ngày", "Tỷ lệ địa điểm có quét theo xã", "chưa quét"),
    "en": ("Venues with at least one scan, per day", "Share of venues scanning, per commune", "zero scans"),
}


def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = _font_path(bold)
    return ImageFont.truetype(path, size) if path else ImageFont.load_default(size=size)


def coverage_chart_png(
    communes: Sequence[CommuneCoverage], trend: Sequence[dict], title: str, lang: str = "vi"
) -> bytes:
    """Two panels side by side: the daily trend (line) and per-commune active share (bars)."""
    left_title, right_title, zero_label = LABELS["en" if lang == "en" else "vi"]
    rows = sorted(communes, key=lambda c: (c.active_share, c.name))
    width, height = 1400, max(520, 110 + 22 * len(rows))
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    d.text((24, 16), title, fill=INK, font=_font(22, bold=True))
    _trend_panel(d, trend, left_title, (24, 70, 640, 440))
    _share_panel(d, rows, right_title, zero_label, (700, 70, width - 24, height - 20))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _trend_panel(d: ImageDraw.ImageDraw, trend: Sequence[dict], title: str, box: tuple[int, int, int, int]) -> None:
    x0, y0, x1, y1 = box
    d.text((x0, y0), title, fill=INK, font=_font(16, bold=True))
    top, bottom, left = y0 + 40, y1 - 30, x0 + 50
    peak = max([p["active_venues"] for p in trend] + [1])
    for i in range(5):
        y = bottom - (bottom - top) * i / 4
        d.line([(left, y), (x1, y)], fill=GRID)
        d.text((x0, y - 8), f"{round(peak * i / 4):,}", fill=INK, font=_font(12))
    if not trend:
        return
    step = (x1 - left) / max(1, len(trend) - 1)
    points = [(left + i * step, bottom - (bottom - top) * p["active_venues"] / peak) for i, p in enumerate(trend)]
    if len(points) > 1:
        d.line(points, fill=RED, width=3)
    for x, y in points:
        d.ellipse([x - 4, y - 4, x + 4, y + 4], fill=RED)
    every = max(1, len(trend) // 7)
    for i, p in enumerate(trend):
        if i % every == 0 or i == len(trend) - 1:
            d.text((points[i][0] - 18, bottom + 8), p["date"][5:], fill=INK, font=_font(12))


def _share_panel(d: ImageDraw.ImageDraw, rows: Sequence[CommuneCoverage], title: str, zero_label: str,
                 box: tuple[int, int, int, int]) -> None:  # fmt: skip
    x0, y0, x1, _ = box
    d.text((x0, y0), title, fill=INK, font=_font(16, bold=True))
    bar_left = x0 + 180
    bar_w = x1 - bar_left - 150
    small = _font(12)
    for i, c in enumerate(rows):
        y = y0 + 36 + i * 22
        colour = RED if c.active_venues == 0 else AMBER if c.active_venues < c.registered else GREEN
        d.text((x0, y), c.name[:24], fill=INK, font=small)
        d.rectangle([bar_left, y + 2, bar_left + max(2, bar_w * c.active_share), y + 16], fill=colour)
        label = f"{c.active_venues}/{c.registered} ({c.active_share:.0%})"
        if c.active_venues == 0:
            label += f" {zero_label}"
        d.text((bar_left + max(2, bar_w * c.active_share) + 6, y), label, fill=INK, font=small)
