"""Venue ids (issue 10 item 10): one pattern for every path that creates a venue, checked before anything
is registered; the simulator's ids keep to it."""

from __future__ import annotations

import pytest

from qrtrace.domain.venues import VENUE_ID_PATTERN, Venue, check_venue_ids, parse_venues, venue_id_problem
from qrtrace.errors import InputError
from qrtrace.producers.simulator import SimulationConfig, build_district

HEADER = "venue_id,name,category,commune_code,capacity\n"
BAD_IDS = ['VN"; filename=evil.exe; x="', "VNé1", "VNđ1", "VN 1", "-VN1", "VN1\n", "VN/1", "V" * 65, "VN\x001"]


def _csv_field(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


@pytest.mark.parametrize("venue_id", [v for v in BAD_IDS if v.strip() == v])  # the reader strips cells
def test_a_csv_with_a_bad_venue_id_is_refused_with_its_line(venue_id: str) -> None:
    text = HEADER + "VN1,Chợ,market,02536,50\n" + f"{_csv_field(venue_id)},Quán,restaurant,02536,20\n"
    with pytest.raises(InputError, match=r"^venues\.csv line 3: venue_id .* is not a venue id"):
        parse_venues(text, "venues.csv")


@pytest.mark.parametrize("venue_id", BAD_IDS)
def test_registering_checks_every_venue(venue_id: str) -> None:
    assert venue_id_problem(venue_id)
    with pytest.raises(InputError, match=r"is not a venue id .*; nothing was registered"):
        check_venue_ids([Venue("VN1", "a", "market", "02536", 5), Venue(venue_id, "b", "market", "02536", 5)])


def test_good_ids_and_the_simulators_ids_pass() -> None:
    for venue_id in ("VN4675010", "SD-02536-0042", "OT-MARKET", "a.b_c:d-e", "V" * 64):
        assert venue_id_problem(venue_id) is None
    district = build_district(SimulationConfig(population=300, days=1))
    check_venue_ids(district.venues)  # the demo registers these
    assert len(district.venues) > 100


def test_the_api_refuses_the_same_ids() -> None:
    import re

    from qrtrace.api.models import VenueIn

    assert re.fullmatch(VENUE_ID_PATTERN, "VN4675010")
    for venue_id in (v for v in BAD_IDS if v.strip() == v):  # the model strips whitespace first
        with pytest.raises(ValueError):
            VenueIn(venue_id=venue_id, name="x", category="market", commune_code="02536", capacity=5)
