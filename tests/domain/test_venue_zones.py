"""Venue zones (issue 14): the venues file's optional zones column, each zone's signed QR and poster."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from qrtrace.domain.poster_pdf import render_poster_pdf
from qrtrace.domain.posters import render_poster
from qrtrace.domain.venue_qr import decode_venue_qr, encode_venue_qr, venue_signing_key
from qrtrace.domain.venues import Venue, parse_venues, read_venues_csv, write_venues_csv
from qrtrace.domain.zones import MAX_ZONES, join_zones, parse_zones, split_zones
from qrtrace.errors import InputError

KEY = venue_signing_key(bytes(range(32)))
MARKET = Venue("SD-CHO-1", "Chợ Sơn Dương", "market", "08662", 800, ("Khu hàng khô", "Khu thực phẩm tươi sống"))
ISSUED = datetime(2021, 7, 20, 8, 0, tzinfo=UTC)
HEADER = "venue_id,name,category,commune_code,capacity,zones\n"


def test_zones_parse_join_and_split() -> None:
    assert parse_zones(" Khu A ; Khu B ") == ("Khu A", "Khu B")
    assert parse_zones("") == () and parse_zones("  ") == ()
    assert split_zones(join_zones(("Khu A", "Khu B"))) == ("Khu A", "Khu B") and split_zones("") == ()


@pytest.mark.parametrize(
    ("cell", "why"),
    [
        ("Khu A;;Khu B", "empty"),
        ("Khu A;khu a", "appears twice"),
        ("Z" * 65, "longer than 64"),
        (";".join(f"K{i}" for i in range(MAX_ZONES + 1)), f"at most {MAX_ZONES}"),
        ("Khu\x07A", "control"),
    ],
)
def test_bad_zone_cells_are_refused_with_their_line(cell: str, why: str) -> None:
    text = HEADER + "V1,Chợ,market,08662,100,\n" + f'V2,Chợ 2,market,08662,100,"{cell}"\n'
    with pytest.raises(InputError, match=f"line 3: .*{why}"):
        parse_venues(text, "venues.csv")


def test_a_venue_file_with_zones_round_trips(tmp_path: Path) -> None:
    text = HEADER + "V1,Chợ,market,08662,100,Khu A;Khu B\nV2,Nhà hàng,restaurant,08662,50,\n"
    venues = parse_venues(text, "venues.csv")
    assert [v.zones for v in venues] == [("Khu A", "Khu B"), ()]
    write_venues_csv(tmp_path / "out.csv", venues)
    assert read_venues_csv(tmp_path / "out.csv") == venues
    plain = parse_venues("venue_id,name,category,commune_code,capacity\nV1,Chợ,market,08662,100\n", "v.csv")
    assert plain[0].zones == ()  # the column is optional


def test_a_zones_qr_is_signed_with_its_zone_and_a_plain_qr_is_unchanged() -> None:
    zoned = decode_venue_qr(encode_venue_qr(MARKET, KEY, ISSUED, zone="Khu hàng khô"), KEY.public_key())
    assert (zoned.venue_id, zoned.zone) == ("SD-CHO-1", "Khu hàng khô")
    plain = encode_venue_qr(MARKET, KEY, ISSUED)
    assert decode_venue_qr(plain, KEY.public_key()).zone == ""
    assert plain == encode_venue_qr(
        Venue(*[getattr(MARKET, f) for f in ("venue_id", "name", "category", "commune_code", "capacity")]), KEY, ISSUED
    )


def test_an_unknown_zone_gets_no_qr() -> None:
    with pytest.raises(InputError, match="has no zone 'Khu C'; its zones are Khu hàng khô, Khu thực phẩm"):
        encode_venue_qr(MARKET, KEY, ISSUED, zone="Khu C")
    with pytest.raises(InputError, match="it has no zones"):
        encode_venue_qr(Venue("V2", "Nhà hàng", "restaurant", "08662", 50), KEY, ISSUED, zone="Khu A")


def test_a_zones_poster_carries_its_payload_and_names_the_zone(tmp_path: Path) -> None:
    payload = encode_venue_qr(MARKET, KEY, ISSUED, zone="Khu hàng khô")
    svg = render_poster(MARKET, payload, "Thị trấn Sơn Dương", tmp_path / "p.svg", zone="Khu hàng khô").read_text()
    assert "Khu vực: Khu hàng khô" in svg
    with Image.open(render_poster(MARKET, payload, "TT", tmp_path / "p.png", zone="Khu hàng khô")) as image:
        assert image.text["qrtrace:payload"] == payload
    assert render_poster_pdf(MARKET, payload, "TT", "en", zone="Khu hàng khô").startswith(b"%PDF")
