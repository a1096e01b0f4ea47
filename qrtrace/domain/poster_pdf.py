"""The printable A4 poster as PDF: vector text in Vietnamese (DejaVu Sans embedded) around the signed QR."""

from __future__ import annotations

import io

from fpdf import FPDF

from qrtrace.domain.categories import load_categories
from qrtrace.domain.posters import TEXTS, _clean, _font_path, venue_qr_code
from qrtrace.domain.venues import Venue
from qrtrace.errors import InputError

A4_MM = (210.0, 297.0)


def render_poster_pdf(venue: Venue, payload: str, commune_name: str, lang: str = "vi", zone: str = "") -> bytes:
    """A4 portrait: title, venue name (and the zone, for a zone's poster), category, commune, the QR at
    150 mm, the venue id and how to scan."""
    regular, bold = _font_path(False), _font_path(True)
    if regular is None or bold is None:
        raise InputError("No Unicode font for the PDF poster; install the fonts-dejavu-core package.")
    texts = TEXTS["en" if lang == "en" else "vi"]
    category = load_categories()[venue.category].name(lang)
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_title(f"QR {venue.venue_id}")
    pdf.set_creator("qrtrace")
    pdf.add_font("DejaVu", "", regular)
    pdf.add_font("DejaVu", "B", bold)
    pdf.set_auto_page_break(False)
    pdf.add_page()
    width, height = A4_MM
    pdf.set_draw_color(183, 28, 28)
    pdf.set_line_width(3)
    pdf.rect(8, 8, width - 16, height - 16)
    pdf.set_fill_color(183, 28, 28)
    pdf.rect(8, 8, width - 16, 28, style="F")
    pdf.set_text_color(255, 255, 255)
    pdf.set_font("DejaVu", "B", 22)
    pdf.set_xy(12, 14)
    pdf.cell(width - 24, 14, texts["title"], align="C")
    pdf.set_text_color(17, 17, 17)
    pdf.set_font("DejaVu", "B", 24)
    pdf.set_xy(16, 44)
    pdf.multi_cell(width - 32, 11, _clean(venue.name), align="C", max_line_height=11)
    if zone:
        pdf.set_text_color(183, 28, 28)
        pdf.set_font("DejaVu", "B", 20)
        pdf.set_x(16)
        pdf.multi_cell(width - 32, 10, f"{texts['zone']}: {_clean(zone)}", align="C")
        pdf.set_text_color(17, 17, 17)
    pdf.set_font("DejaVu", "", 14)
    pdf.set_x(16)
    pdf.multi_cell(width - 32, 8, f"{texts['category']}: {_clean(category)}", align="C")
    pdf.set_x(16)
    pdf.multi_cell(width - 32, 8, f"{texts['commune']}: {_clean(commune_name)}", align="C")
    qr = venue_qr_code(payload)
    png = io.BytesIO()
    qr.save(png, kind="png", scale=10, border=4)
    size = 150.0
    top = max(pdf.get_y() + 6, 92.0)
    pdf.image(io.BytesIO(png.getvalue()), x=(width - size) / 2, y=top, w=size, h=size)
    pdf.set_xy(16, top + size + 4)
    pdf.set_font("DejaVu", "B", 14)
    pdf.cell(width - 32, 8, f"{texts['venue_id']}: {venue.venue_id}", align="C")
    pdf.set_xy(16, top + size + 14)
    pdf.set_font("DejaVu", "", 13)
    pdf.multi_cell(width - 32, 7, texts["scan"], align="C")
    return bytes(pdf.output())
