"""Printable venue check-in posters (A5 portrait, PNG at 150 dpi or SVG) carrying the signed venue QR.

One layout is computed once (text measured with the same TrueType font the PNG uses) and painted either
with Pillow or as SVG text, so both formats show the same poster.
"""

from __future__ import annotations

import io
import os
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import segno
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from qrtrace.domain.categories import load_categories
from qrtrace.domain.venues import Venue
from qrtrace.errors import InputError

FORMATS = ("png", "svg")
LANGS = ("vi", "en")
DPI = 150
WIDTH, HEIGHT = 874, 1240  # A5 (148 x 210 mm) at 150 dpi
MARGIN = 56
FRAME = 16  # inset of the coloured frame
BAND_HEIGHT = 124
QR_ERROR = "q"  # posters get dirty and creased; Q still reads with a quarter of the code damaged
QR_BORDER = 4  # the quiet zone the QR standard requires, in modules
ACCENT = "#b71c1c"
INK = "#111111"
MUTED = "#444444"
SVG_FONT_FAMILY = "'DejaVu Sans', sans-serif"
# DejaVu Sans ascent / em: turns the layout's top-of-line into an SVG baseline.
ASCENT = 0.93

TEXTS = {
    "vi": {
        "title": "MÃ QR ĐIỂM KIỂM SOÁT RA VÀO",
        "category": "Loại hình",
        "commune": "Địa bàn",
        "venue_id": "Mã điểm",
        "zone": "Khu vực",
        "scan": "Quét mã bằng ứng dụng PC-Covid hoặc Bluezone khi ra vào",
    },
    "en": {
        "title": "VENUE CHECK-IN QR CODE",
        "category": "Category",
        "commune": "Commune",
        "venue_id": "Venue ID",
        "zone": "Zone",
        "scan": "Scan with the PC-Covid or Bluezone app when you enter and leave",
    },
}

FONT_CANDIDATES = {
    False: (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",  # Debian / Ubuntu (fonts-dejavu-core)
        "/usr/share/fonts/TTF/DejaVuSans.ttf",  # Arch
        "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",  # Fedora
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
        "/usr/local/share/fonts/DejaVuSans.ttf",
        "/Library/Fonts/Arial Unicode.ttf",  # macOS
        "C:/Windows/Fonts/arial.ttf",
    ),
    True: (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
        "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
        "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans-Bold.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
        "/usr/local/share/fonts/DejaVuSans-Bold.ttf",
        "/Library/Fonts/Arial Unicode.ttf",
        "C:/Windows/Fonts/arialbd.ttf",
    ),
}

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True, slots=True)
class TextLine:
    text: str
    center_x: float
    top: float  # y of the ascender line
    size: int
    bold: bool
    fill: str


@dataclass(frozen=True, slots=True)
class QrPlacement:
    x: int  # top-left of the symbol including its quiet zone
    y: int
    scale: int  # pixels per module
    border: int  # quiet-zone modules


@dataclass(frozen=True, slots=True)
class PosterLayout:
    lines: tuple[TextLine, ...]
    qr: QrPlacement


def venue_qr_code(payload: str) -> segno.QRCode:
    """The QR symbol printed on posters for `payload` (full-size QR, error correction Q)."""
    if not isinstance(payload, str) or not payload:
        raise InputError("The venue QR payload is empty.")
    try:
        return segno.make(payload, error=QR_ERROR, micro=False)
    except (segno.DataOverflowError, ValueError):
        raise InputError(f"The venue QR payload ({len(payload)} characters) is too long for a QR code.") from None


def render_poster(
    venue: Venue,
    payload: str,
    commune_name: str,
    out: Path,
    fmt: str | None = None,
    lang: str = "vi",
    zone: str = "",
) -> Path:
    """Write a printable check-in poster for `venue` showing `payload` as a QR code; returns `out`. With a
    `zone`, the poster of that zone of the venue (its payload names the zone), the zone printed large.

    The format is `fmt` ("png" or "svg") or else taken from the suffix of `out`. The file is written
    atomically, so a printer or web server never sees half a poster.
    """
    out = Path(out)
    kind = _resolve_format(out, fmt)
    qr = venue_qr_code(payload)
    layout = layout_poster(venue, commune_name, qr, lang, zone)
    if kind == "png":
        data = _png_bytes(layout, qr, venue, payload)
    else:
        data = _svg_text(layout, qr, venue, lang).encode("utf-8")
    _write_atomic(out, data)
    return out


def layout_poster(venue: Venue, commune_name: str, qr: segno.QRCode, lang: str = "vi", zone: str = "") -> PosterLayout:
    """Where every line of text and the QR symbol go on the page (pixels at 150 dpi)."""
    if lang not in TEXTS:
        raise InputError(f"Poster language {lang!r} is not supported; use one of {', '.join(LANGS)}.")
    texts = TEXTS[lang]
    category = load_categories().get(venue.category)
    category_name = category.name(lang) if category else venue.category
    width = WIDTH - 2 * MARGIN
    cx = WIDTH / 2
    lines: list[TextLine] = []

    def block(text: str, top: float, max_size: int, min_size: int, max_lines: int, bold: bool, fill: str) -> float:
        """Lay out one wrapped, centred paragraph; returns the y just below it."""
        size, wrapped = _fit(_clean(text), bold, width, max_size, min_size, max_lines)
        step = round(size * 1.25)
        for i, line in enumerate(wrapped):
            lines.append(TextLine(line, cx, top + i * step, size, bold, fill))
        return top + len(wrapped) * step

    # Title: white on the coloured band; vertically centred when it fits on one line.
    title_size, title_lines = _fit(texts["title"], True, width, 42, 22, 2)
    title_step = round(title_size * 1.25)
    title_top = FRAME + (BAND_HEIGHT - title_step * len(title_lines)) / 2 + title_size * 0.12
    for i, line in enumerate(title_lines):
        lines.append(TextLine(line, cx, title_top + i * title_step, title_size, True, "#ffffff"))

    y = block(venue.name or venue.venue_id, FRAME + BAND_HEIGHT + 30, 48, 28, 3, True, INK)
    if zone:
        y = block(f"{texts['zone']}: {zone}", y + 4, 40, 24, 2, True, ACCENT)
    y = block(f"{texts['category']}: {category_name}", y + 12, 26, 20, 2, False, MUTED)
    y = block(f"{texts['commune']}: {commune_name}", y + 2, 26, 20, 2, False, MUTED)
    qr_top = y + 8

    # Bottom-up: the venue id sits above the frame, the scan instruction above it.
    id_size, id_lines = _fit(_clean(f"{texts['venue_id']}: {venue.venue_id}"), False, width, 24, 16, 1)
    id_top = HEIGHT - FRAME - 28 - id_size
    lines.append(TextLine(id_lines[0], cx, id_top, id_size, False, MUTED))
    scan_size, scan_lines = _fit(texts["scan"], True, width, 28, 20, 2)
    scan_step = round(scan_size * 1.25)
    scan_top = id_top - 14 - scan_step * len(scan_lines)
    for i, line in enumerate(scan_lines):
        lines.append(TextLine(line, cx, scan_top + i * scan_step, scan_size, True, ACCENT))
    qr_bottom = scan_top - 4

    modules = qr.symbol_size(scale=1, border=QR_BORDER)[0]
    # Whole pixels per module keep every module the same size, which scanners need.
    scale = max(1, int(min(WIDTH - 2 * FRAME - 16, qr_bottom - qr_top) // modules))
    side = modules * scale
    qr_y = qr_top + max(0, (qr_bottom - qr_top - side) / 2)
    placement = QrPlacement(round((WIDTH - side) / 2), round(qr_y), scale, QR_BORDER)
    return PosterLayout(tuple(lines), placement)


def _resolve_format(out: Path, fmt: str | None) -> str:
    kind = (fmt if fmt is not None else out.suffix).lower().lstrip(".")
    if kind not in FORMATS:
        given = f"format {fmt!r}" if fmt is not None else f"file name {out.name!r}"
        raise InputError(f"Cannot write a poster with {given}; use a .png or .svg file.")
    return kind


def _clean(text: str) -> str:
    """NFC text on one line: precomposed Vietnamese letters render well without a shaping engine,
    and control characters or lone surrogates would break the PNG text or make the SVG invalid XML."""
    text = unicodedata.normalize("NFC", str(text))
    kept = (" " if unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") else ch for ch in text)
    return " ".join("".join(kept).split())


@cache
def _font_path(bold: bool) -> str | None:
    return next((p for p in FONT_CANDIDATES[bold] if os.path.isfile(p)), None)


@cache
def _font(size: int, bold: bool) -> Font:
    """A TrueType font with Vietnamese glyphs when one is installed, else Pillow's built-in font."""
    path = _font_path(bold)
    if path is not None:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            pass
    try:
        return ImageFont.load_default(size=size)
    except (OSError, ValueError, ImportError):  # Pillow built without FreeType
        return ImageFont.load_default()


def _fit(text: str, bold: bool, width: float, max_size: int, min_size: int, max_lines: int) -> tuple[int, list[str]]:
    """The largest size (step 2) at which `text` wraps into `max_lines`; at `min_size`, cut with '…'."""
    size = max_size
    while True:
        measure = _font(size, bold).getlength
        lines = _wrap(text, measure, width)
        if len(lines) <= max_lines:
            return size, lines
        if size - 2 < min_size:
            kept = lines[:max_lines]
            last = kept[-1]
            while last and measure(last + "…") > width:
                last = last[:-1].rstrip()
            kept[-1] = last + "…"
            return size, kept
        size -= 2


def _wrap(text: str, measure: Callable[[str], float], width: float) -> list[str]:
    """Greedy word wrap; a word wider than the line is split between characters."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if measure(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = ""
        for ch in word:
            if current and measure(current + ch) > width:
                lines.append(current)
                current = ""
            current += ch
    if current:
        lines.append(current)
    return lines or [""]


def _png_bytes(layout: PosterLayout, qr: segno.QRCode, venue: Venue, payload: str) -> bytes:
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([FRAME, FRAME, WIDTH - FRAME - 1, HEIGHT - FRAME - 1], outline=ACCENT, width=6)
    draw.rectangle([FRAME, FRAME, WIDTH - FRAME - 1, FRAME + BAND_HEIGHT], fill=ACCENT)
    for line in layout.lines:
        font = _font(line.size, line.bold)
        # Left/ascender anchoring (Pillow's default) works for bitmap fallback fonts too.
        x = line.center_x - font.getlength(line.text) / 2
        draw.text((x, line.top), line.text, font=font, fill=line.fill)
    _draw_qr(draw, qr, layout.qr)
    info = PngInfo()
    info.add_text("Title", f"{TEXTS['vi']['title']}: {_clean(venue.name)}")
    # Where the symbol is and what it encodes, so tools (and tests) can check it without a QR decoder.
    q = layout.qr
    info.add_text("qrtrace:qr", f"x={q.x} y={q.y} scale={q.scale} border={q.border}")
    info.add_text("qrtrace:payload", payload)
    buf = io.BytesIO()
    image.save(buf, format="PNG", dpi=(DPI, DPI), pnginfo=info, optimize=True)
    return buf.getvalue()


def _draw_qr(draw: ImageDraw.ImageDraw, qr: segno.QRCode, at: QrPlacement) -> None:
    side = qr.symbol_size(scale=at.scale, border=at.border)[0]
    draw.rectangle([at.x, at.y, at.x + side - 1, at.y + side - 1], fill="white")
    for r, row in enumerate(qr.matrix):
        for c, dark in enumerate(row):
            if dark:
                x = at.x + (c + at.border) * at.scale
                y = at.y + (r + at.border) * at.scale
                draw.rectangle([x, y, x + at.scale - 1, y + at.scale - 1], fill="black")


def _svg_text(layout: PosterLayout, qr: segno.QRCode, venue: Venue, lang: str) -> str:
    q = layout.qr
    side = qr.symbol_size(scale=q.scale, border=q.border)[0]
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" xml:lang="{lang}" width="148mm" height="210mm" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family={quoteattr(SVG_FONT_FAMILY)}>',
        f"<title>{escape(TEXTS[lang]['title'])}: {escape(_clean(venue.name))}</title>",
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<rect x="{FRAME + 3}" y="{FRAME + 3}" width="{WIDTH - 2 * FRAME - 6}" '
        f'height="{HEIGHT - 2 * FRAME - 6}" fill="none" stroke="{ACCENT}" stroke-width="6"/>',
        f'<rect x="{FRAME}" y="{FRAME}" width="{WIDTH - 2 * FRAME}" height="{BAND_HEIGHT}" fill="{ACCENT}"/>',
    ]
    for line in layout.lines:
        weight = ' font-weight="bold"' if line.bold else ""
        baseline = line.top + ASCENT * line.size
        parts.append(
            f'<text x="{line.center_x:g}" y="{baseline:.1f}" font-size="{line.size}"{weight} '
            f'text-anchor="middle" fill="{line.fill}">{escape(line.text)}</text>'
        )
    parts.append(
        f'<g transform="translate({q.x} {q.y})" shape-rendering="crispEdges">'
        f'<rect width="{side}" height="{side}" fill="#ffffff"/>'
        f"{qr.svg_inline(scale=q.scale, border=q.border, dark='#000000')}</g>"
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _write_atomic(out: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder and rename it over `out`."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp")
        # os.open honours the umask, so the poster gets normal permissions (not a temp file's 0600).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, out)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise InputError(f"Cannot write the poster to {out}: {exc.strerror or exc}.") from exc
