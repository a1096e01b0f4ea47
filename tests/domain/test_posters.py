"""Printable venue posters: PNG and SVG carry the venue's Vietnamese text and exactly the payload's QR."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest
import segno
from PIL import Image

from qrtrace.domain import posters
from qrtrace.domain.posters import render_poster, venue_qr_code
from qrtrace.domain.venue_qr import encode_venue_qr, venue_signing_key
from qrtrace.domain.venues import Venue
from qrtrace.errors import InputError

SVG_NS = "{http://www.w3.org/2000/svg}"
KEY = venue_signing_key(bytes(range(32)))
VENUE = Venue("SD-02536-0042", "Karaoke Hoàng Gia", "karaoke", "02536", 40)
PAYLOAD = encode_venue_qr(VENUE, KEY, datetime(2021, 7, 20, 8, 0, tzinfo=UTC))
COMMUNE = "Thị trấn Sơn Dương"


def expected_matrix(payload: str) -> list[list[bool]]:
    """The symbol, built independently of the poster module."""
    return [[bool(m) for m in row] for row in segno.make(payload, error="q", micro=False).matrix]


def drawn_matrix(image: Image.Image, x: int, y: int, scale: int, border: int, size: int) -> list[list[bool]]:
    """Read the modules back from the pixels at each module's centre."""
    gray = image.convert("L")
    half = scale // 2
    return [
        [gray.getpixel((x + (c + border) * scale + half, y + (r + border) * scale + half)) < 128 for c in range(size)]
        for r in range(size)
    ]


def svg_texts(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    return [t.text or "" for t in root.iter(f"{SVG_NS}text")]


def test_png_poster_is_a5_at_150_dpi_and_carries_the_payload_qr(tmp_path: Path) -> None:
    out = render_poster(VENUE, PAYLOAD, COMMUNE, tmp_path / "poster.png")
    assert out == tmp_path / "poster.png"
    with Image.open(out) as image:
        image.load()
        assert image.format == "PNG"
        assert image.size == (874, 1240)
        assert round(image.info["dpi"][0]) == 150
        assert image.text["qrtrace:payload"] == PAYLOAD
        geometry = dict(part.split("=") for part in image.text["qrtrace:qr"].split())
        x, y, scale, border = (int(geometry[k]) for k in ("x", "y", "scale", "border"))
        want = expected_matrix(PAYLOAD)
        assert scale >= 6  # ~1 mm modules at 150 dpi: readable from arm's length
        assert border >= 4
        side = (len(want) + 2 * border) * scale
        assert x >= 0 and x + side <= image.width and y >= 0 and y + side <= image.height
        assert drawn_matrix(image, x, y, scale, border, len(want)) == want
        # The quiet zone around the symbol is white.
        gray = image.convert("L")
        for i in range(0, side, scale):
            for px, py in ((x + i, y + 1), (x + 1, y + i), (x + i, y + side - 2), (x + side - 2, y + i)):
                assert gray.getpixel((px, py)) > 200


def test_png_has_dark_text_above_and_below_the_qr(tmp_path: Path) -> None:
    out = render_poster(VENUE, PAYLOAD, COMMUNE, tmp_path / "poster.png")
    with Image.open(out) as image:
        geometry = dict(part.split("=") for part in image.text["qrtrace:qr"].split())
        top, bottom = (
            int(geometry["y"]),
            int(geometry["y"]) + (len(expected_matrix(PAYLOAD)) + 8) * int(geometry["scale"]),
        )
        gray = image.convert("L")
        above = gray.crop((60, 150, 814, top)).getextrema()
        below = gray.crop((60, bottom, 814, 1200)).getextrema()
        assert above[0] < 80 and below[0] < 80  # name / category above, instruction / id below


def test_svg_poster_has_vietnamese_text_and_the_payload_qr_path(tmp_path: Path) -> None:
    out = render_poster(VENUE, PAYLOAD, COMMUNE, tmp_path / "poster.svg")
    text = out.read_text(encoding="utf-8")
    texts = svg_texts(out)
    assert "MÃ QR ĐIỂM KIỂM SOÁT RA VÀO" in texts
    assert "Karaoke Hoàng Gia" in texts
    assert "Loại hình: Karaoke" in texts
    assert f"Địa bàn: {COMMUNE}" in texts
    assert f"Mã điểm: {VENUE.venue_id}" in texts
    assert "Quét mã bằng ứng dụng PC-Covid hoặc Bluezone khi ra vào" in " ".join(texts)
    assert "DejaVu Sans" in text
    expected_path = re.search(r' d="([^"]+)"', segno.make(PAYLOAD, error="q", micro=False).svg_inline())
    assert expected_path is not None
    assert f'd="{expected_path.group(1)}"' in text
    other = encode_venue_qr(Venue("SD-02536-0043", "x", "karaoke", "02536", 1), KEY, datetime(2021, 7, 20, tzinfo=UTC))
    other_path = re.search(r' d="([^"]+)"', segno.make(other, error="q", micro=False).svg_inline())
    assert other_path is not None and other_path.group(1) not in text


def test_english_poster(tmp_path: Path) -> None:
    out = render_poster(VENUE, PAYLOAD, COMMUNE, tmp_path / "poster.svg", lang="en")
    joined = " ".join(svg_texts(out))
    assert "VENUE CHECK-IN QR CODE" in joined
    assert "Category: Karaoke" in joined
    assert "Karaoke Hoàng Gia" in joined  # the venue's own name stays Vietnamese
    assert "PC-Covid" in joined and "Bluezone" in joined
    render_poster(VENUE, PAYLOAD, COMMUNE, tmp_path / "poster.png", lang="en")
    with Image.open(tmp_path / "poster.png") as image:
        assert image.size == (874, 1240)


def test_long_names_wrap_and_xml_special_characters_are_escaped(tmp_path: Path) -> None:
    name = "Nhà hàng <Đồng Quê> & Quán nướng Bếp Lửa Hồng – chi nhánh đường Tân Trào, Thị trấn Sơn Dương " * 3
    venue = Venue("SD-1", name, "restaurant", "02536", 80)
    out = render_poster(venue, PAYLOAD, COMMUNE, tmp_path / "long.svg")
    texts = svg_texts(out)  # parses, so the escaping held
    assert any("<Đồng Quê> &" in t for t in texts)
    name_lines = {t for t in texts if "Nhà hàng" in t or "Quê" in t}
    assert name_lines and all(len(t) < 60 for t in name_lines)
    assert any(t.endswith("…") for t in texts)  # cut to three lines
    render_poster(venue, PAYLOAD, COMMUNE, tmp_path / "long.png")


def test_decomposed_diacritics_are_normalised(tmp_path: Path) -> None:
    import unicodedata

    venue = Venue("SD-2", unicodedata.normalize("NFD", "Karaoke Hoàng Gia"), "karaoke", "02536", 40)
    out = render_poster(venue, PAYLOAD, COMMUNE, tmp_path / "nfd.svg")
    assert "Karaoke Hoàng Gia" in svg_texts(out)


def test_explicit_format_overrides_the_suffix(tmp_path: Path) -> None:
    out = render_poster(VENUE, PAYLOAD, COMMUNE, tmp_path / "poster.out", fmt="svg")
    assert out.read_text(encoding="utf-8").startswith("<?xml")


@pytest.mark.parametrize(("name", "fmt"), [("poster.pdf", None), ("poster", None), ("poster.png", "jpeg")])
def test_unsupported_format_is_an_input_error(tmp_path: Path, name: str, fmt: str | None) -> None:
    with pytest.raises(InputError, match=r"\.png or \.svg"):
        render_poster(VENUE, PAYLOAD, COMMUNE, tmp_path / name, fmt=fmt)
    assert not (tmp_path / name).exists()


def test_unknown_language_and_empty_payload_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="language"):
        render_poster(VENUE, PAYLOAD, COMMUNE, tmp_path / "p.png", lang="fr")
    with pytest.raises(InputError, match="empty"):
        render_poster(VENUE, "", COMMUNE, tmp_path / "p.png")
    with pytest.raises(InputError, match="too long"):
        venue_qr_code("x" * 5000)


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "poster.png"
    out.parent.mkdir()
    out.write_bytes(b"old poster")
    render_poster(VENUE, PAYLOAD, COMMUNE, out)
    assert out.read_bytes().startswith(b"\x89PNG")
    assert os.listdir(out.parent) == ["poster.png"]


def test_unwritable_destination_is_an_input_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(InputError, match="Cannot write the poster"):
        render_poster(VENUE, PAYLOAD, COMMUNE, blocker / "poster.png")


def test_falls_back_to_pillows_font_when_no_truetype_font_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(posters, "FONT_CANDIDATES", {False: ("/nonexistent.ttf",), True: ("/nonexistent.ttf",)})
    posters._font_path.cache_clear()
    posters._font.cache_clear()
    try:
        out = render_poster(VENUE, PAYLOAD, COMMUNE, tmp_path / "fallback.png")
        with Image.open(out) as image:
            assert image.size == (874, 1240)
    finally:
        posters._font_path.cache_clear()
        posters._font.cache_clear()
