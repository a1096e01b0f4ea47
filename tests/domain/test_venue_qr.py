"""Signed venue QR payloads: valid ones round-trip, anything forged or altered is refused cleanly."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qrtrace.domain.venue_qr import (
    ForgedVenueQrError,
    VenueQrClaims,
    decode_venue_qr,
    encode_venue_qr,
    venue_public_key,
    venue_signing_key,
)
from qrtrace.domain.venues import Venue
from qrtrace.errors import InputError

KEY = venue_signing_key(bytes(range(32)))
PUBLIC = KEY.public_key()
OTHER_KEY = venue_signing_key(b"\x07" * 32)
VENUE = Venue("SD-02536-0042", "Karaoke Hoàng Gia", "karaoke", "02536", 40)
ISSUED = datetime(2021, 7, 20, 15, 30, 12, tzinfo=timezone(timedelta(hours=7)))
PAYLOAD = encode_venue_qr(VENUE, KEY, ISSUED)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def claims_json(**claims: object) -> bytes:
    return json.dumps(claims, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signed(claims: bytes, key=KEY) -> str:
    """A payload the authority's key really signed, whatever the claims say."""
    signing_input = f"QRT1.{b64(claims)}"
    return f"{signing_input}.{b64(key.sign(signing_input.encode()))}"


def test_valid_payload_round_trips() -> None:
    claims = decode_venue_qr(PAYLOAD, PUBLIC)
    assert claims == VenueQrClaims("SD-02536-0042", "02536", "karaoke", datetime(2021, 7, 20, 8, 30, 12, tzinfo=UTC))
    assert claims.issued_at.tzinfo is UTC


def test_payload_is_compact_ascii_with_canonical_claims() -> None:
    prefix, claims_b64, sig_b64 = PAYLOAD.split(".")
    assert prefix == "QRT1"
    assert PAYLOAD.isascii() and len(PAYLOAD) < 200
    raw = base64.urlsafe_b64decode(claims_b64 + "=" * (-len(claims_b64) % 4))
    assert raw == b'{"c":"02536","k":"karaoke","t":1626769812,"v":"SD-02536-0042"}'
    assert len(base64.urlsafe_b64decode(sig_b64 + "==")) == 64


def test_non_ascii_venue_id_round_trips() -> None:
    venue = Venue("Chợ-Sơn-Dương-1", "Chợ Sơn Dương", "market", "02536", 500)
    assert decode_venue_qr(encode_venue_qr(venue, KEY, ISSUED), PUBLIC).venue_id == "Chợ-Sơn-Dương-1"


def test_trailing_newline_from_scanner_is_accepted() -> None:
    assert decode_venue_qr(PAYLOAD + "\r\n", PUBLIC).venue_id == VENUE.venue_id


def test_public_key_from_raw_bytes_verifies() -> None:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = PUBLIC.public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert decode_venue_qr(PAYLOAD, venue_public_key(raw)).venue_id == VENUE.venue_id
    with pytest.raises(InputError):
        venue_public_key(b"short")


def test_seed_must_be_32_bytes() -> None:
    with pytest.raises(InputError, match="32 bytes"):
        venue_signing_key(b"too short")


def test_encode_refuses_naive_time_and_missing_fields() -> None:
    with pytest.raises(InputError, match="timezone"):
        encode_venue_qr(VENUE, KEY, datetime(2021, 7, 20))  # noqa: DTZ001
    with pytest.raises(InputError, match="commune code"):
        encode_venue_qr(Venue("V1", "x", "karaoke", "", 1), KEY, ISSUED)


def altered_claims_char(payload: str) -> str:
    prefix, claims, sig = payload.split(".")
    i = len(claims) // 2
    swapped = "A" if claims[i] != "A" else "B"
    return f"{prefix}.{claims[:i]}{swapped}{claims[i + 1 :]}.{sig}"


def other_venue_same_signature(payload: str) -> str:
    prefix, _, sig = payload.split(".")
    forged = claims_json(c="02536", k="karaoke", t=1626769812, v="SD-02536-0043")
    return f"{prefix}.{b64(forged)}.{sig}"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (altered_claims_char(PAYLOAD), "signature"),
        (other_venue_same_signature(PAYLOAD), "signature"),
        (encode_venue_qr(VENUE, OTHER_KEY, ISSUED), "signature"),
        (PAYLOAD[:-10], "signature|length|base64"),
        (PAYLOAD[: len(PAYLOAD) // 2], "qrtrace venue code"),
        ("", "qrtrace venue code"),
        ("   ", "qrtrace venue code"),
        ("https://pc-covid.gov.vn/venue/123", "qrtrace venue code"),
        ("QRT2" + PAYLOAD[4:], "qrtrace venue code"),
        (PAYLOAD + ".extra", "qrtrace venue code"),
        ("QRT1.!!!!.????", "qrtrace venue code"),
        ("QRT1.a.b", "base64"),
        ("QRT1.AAAA.AAAA", "length"),
        ("\x00" * 10, "qrtrace venue code"),
        ("QRT1." + "A" * 5000 + ".AAAA", "too long"),
    ],
)
def test_forged_or_broken_payloads_are_refused(payload: str, reason: str) -> None:
    with pytest.raises(ForgedVenueQrError, match=reason):
        decode_venue_qr(payload, PUBLIC)


def test_non_canonical_base64_in_signature_is_refused() -> None:
    # The last character of an 86-char base64 block carries 4 unused bits: flipping one of them
    # decodes to the same signature, and must still be refused.
    prefix, claims, sig = PAYLOAD.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(sig[-1])
    twin = alphabet[last ^ 0b0001]
    with pytest.raises(ForgedVenueQrError, match="base64"):
        decode_venue_qr(f"{prefix}.{claims}.{sig[:-1]}{twin}", PUBLIC)


@pytest.mark.parametrize(
    "claims",
    [
        b"not json",
        b"\xff\xfe",
        b"[1,2,3]",
        claims_json(c="02536", k="karaoke", t=1626769812),
        claims_json(c="02536", k="karaoke", t=1626769812, v="V1", x=1),
        claims_json(c="02536", k="karaoke", t="1626769812", v="V1"),
        claims_json(c="02536", k="karaoke", t=True, v="V1"),
        claims_json(c="02536", k="karaoke", t=-1, v="V1"),
        claims_json(c="02536", k="karaoke", t=10**30, v="V1"),
        claims_json(c="02536", k="", t=1626769812, v="V1"),
        claims_json(c=2536, k="karaoke", t=1626769812, v="V1"),
        b'{"v":"V1","c":"02536","k":"karaoke","t":1626769812}',  # not canonical key order
        b'{"c":"\\ud800","k":"karaoke","t":1626769812,"v":"V1"}',  # lone surrogate
        b"[" * 1200,  # deep nesting, still under the length cap
    ],
)
def test_signed_but_malformed_claims_are_refused(claims: bytes) -> None:
    with pytest.raises(ForgedVenueQrError, match="malformed"):
        decode_venue_qr(signed(claims), PUBLIC)


def test_non_string_payload_is_refused() -> None:
    with pytest.raises(ForgedVenueQrError):
        decode_venue_qr(PAYLOAD.encode(), PUBLIC)  # type: ignore[arg-type]


@settings(max_examples=300)
@given(st.text())
def test_arbitrary_text_only_ever_raises_forged(text: str) -> None:
    with pytest.raises(ForgedVenueQrError):
        decode_venue_qr(text, PUBLIC)


@settings(max_examples=300)
@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.", max_size=300))
def test_arbitrary_payload_shaped_text_only_ever_raises_forged(tail: str) -> None:
    with pytest.raises(ForgedVenueQrError):
        decode_venue_qr("QRT1." + tail, PUBLIC)


@settings(max_examples=500)
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=len(PAYLOAD) - 1), st.integers(min_value=1, max_value=255)),
        min_size=1,
        max_size=4,
    )
)
def test_byte_flips_of_a_valid_payload_are_refused(flips: list[tuple[int, int]]) -> None:
    data = bytearray(PAYLOAD.encode("ascii"))
    for index, mask in flips:
        data[index] ^= mask
    altered = data.decode("latin-1")
    if altered.strip(" \t\r\n") == PAYLOAD:  # flips that cancel out, or only touch padding whitespace
        return
    with pytest.raises(ForgedVenueQrError):
        decode_venue_qr(altered, PUBLIC)
