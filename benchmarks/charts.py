"""Horizontal bar charts on a log scale for benchmark results (Pillow: matplotlib is not in the venv)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

RGB = tuple[int, int, int]


def _font(size: int, bold: bool = False) -> Any:
    from PIL import ImageFont

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for candidate in (name, f"/usr/share/fonts/truetype/dejavu/{name}"):
        try:
            return ImageFont.truetype(candidate, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def log_bar_chart(
    path: Path,
    bars: list[tuple[str, float, str]],
    title: str,
    subtitle: str,
    colours: dict[str, RGB],
    target: float,
    target_label: str,
    left: int,
    plot_w: int,
) -> None:
    """(label, events/s, kind) bars coloured by kind, on a log axis, with a dashed line at `target`."""
    from PIL import Image, ImageDraw

    f_title, f_text, f_small = _font(20, bold=True), _font(15), _font(13)
    right, top, row = 150, 90, 38
    width, height = left + plot_w + right, top + row * len(bars) + 70
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    d.text((20, 15), title, fill="black", font=f_title)
    d.text((20, 45), subtitle, fill=(80, 80, 80), font=f_small)
    values = [v for _, v, _ in bars if v > 0] + [target]
    lo, hi = 10 ** math.floor(math.log10(min(values))), 10 ** math.ceil(math.log10(max(values)))
    span = math.log10(hi) - math.log10(lo)

    def x(v: float) -> float:
        return left + plot_w * (math.log10(max(v, lo)) - math.log10(lo)) / span

    bottom = top + row * len(bars)
    decade = lo
    while decade <= hi:  # bounded: ten-fold steps from lo to hi
        gx = x(decade)
        d.line([(gx, top - 5), (gx, bottom)], fill=(225, 225, 225))
        label = f"{decade:,.0f}"
        d.text((gx - d.textlength(label, font=f_small) / 2, bottom + 6), label, fill=(80, 80, 80), font=f_small)
        decade *= 10
    d.text((left + plot_w / 2 - 120, bottom + 28), "events per second (log scale)", fill="black", font=f_text)
    tx = x(target)
    for y in range(top - 5, bottom, 8):  # dashed target line, behind the bars and their labels
        d.line([(tx, y), (tx, min(y + 4, bottom))], fill=(44, 160, 44), width=2)
    d.text((tx + 4, top - 22), target_label, fill=(44, 160, 44), font=f_small)
    for i, (label, value, kind) in enumerate(bars):
        y = top + i * row
        d.text((left - 10 - d.textlength(label, font=f_text), y + 8), label, fill="black", font=f_text)
        d.rectangle([left, y + 6, x(value), y + row - 6], fill=colours[kind])
        text = f"{value:,.0f}"
        tx0 = x(value) + 6
        d.rectangle([tx0 - 2, y + 8, tx0 + d.textlength(text, font=f_small) + 2, y + row - 8], fill="white")
        d.text((tx0, y + 9), text, fill="black", font=f_small)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


LINE_COLOURS: list[RGB] = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189),
                            (140, 86, 75), (60, 60, 60)]


def line_chart(
    path: Path,
    series: dict[str, list[tuple[float, float]]],
    title: str,
    subtitle: str,
    size: tuple[int, int] = (980, 560),
) -> None:
    """Named (x, y) series as lines with dots on log-log axes (table size against latency)."""
    from PIL import Image, ImageDraw

    points = [p for s in series.values() for p in s if p[1]]
    if not points:
        return
    f_title, f_text, f_small = _font(18, bold=True), _font(14), _font(12)
    width, height = size
    left, right, top, bottom = 90, 250, 80, 60
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    d.text((20, 12), title, fill=(20, 20, 20), font=f_title)
    d.text((20, 40), subtitle, fill=(90, 90, 90), font=f_small)
    xs = [math.log10(x) for x, _ in points]
    ys = [math.log10(y) for _, y in points]
    x0, x1 = math.floor(min(xs)), math.ceil(max(xs)) if max(xs) > min(xs) else math.floor(min(xs)) + 1
    y0, y1 = math.floor(min(ys)), math.ceil(max(ys))
    y1 = y1 if y1 > y0 else y0 + 1
    pw, ph = width - left - right, height - top - bottom

    def at(x: float, y: float) -> tuple[float, float]:
        return (left + (math.log10(x) - x0) / (x1 - x0) * pw, top + ph - (math.log10(y) - y0) / (y1 - y0) * ph)

    for e in range(y0, y1 + 1):
        y = top + ph - (e - y0) / (y1 - y0) * ph
        d.line([(left, y), (left + pw, y)], fill=(225, 225, 225))
        d.text((10, y - 8), f"{10**e:g} ms", fill=(60, 60, 60), font=f_small)
    for e in range(x0, x1 + 1):
        x = left + (e - x0) / (x1 - x0) * pw
        d.line([(x, top), (x, top + ph)], fill=(235, 235, 235))
        d.text((x - 20, top + ph + 8), f"{10**e:,.0f}", fill=(60, 60, 60), font=f_small)
    d.text((left + pw // 2 - 60, height - 28), "lượt ghé / visits", fill=(60, 60, 60), font=f_text)
    for i, (name, pts) in enumerate(series.items()):
        colour = LINE_COLOURS[i % len(LINE_COLOURS)]
        xy = [at(x, y) for x, y in sorted(pts) if y]
        if len(xy) > 1:
            d.line(xy, fill=colour, width=3)
        for x, y in xy:
            d.ellipse([x - 4, y - 4, x + 4, y + 4], fill=colour)
        ly = top + 10 + i * 24
        d.line([(left + pw + 20, ly + 8), (left + pw + 45, ly + 8)], fill=colour, width=3)
        d.text((left + pw + 52, ly), name, fill=(30, 30, 30), font=f_small)
    img.save(path)
