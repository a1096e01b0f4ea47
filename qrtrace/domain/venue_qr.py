"""Signed venue QR payloads: the authority signs, scanners verify with the public key only.

A payload is `QRT1.<claims>.<signature>`, both parts unpadded base64url. The claims are canonical
JSON (sorted keys, no spaces, UTF-8) with `v` (venue id), `c` (commune code), `k` (category code) and
`t` (issued, unix seconds), and `z` (the zone) on a zone's QR only: a scanner app puts it in the check-in's
`zone`. A venue QR without a zone is exactly what it was before zones. The Ed25519 signature covers the
ASCII text `QRT1.<claims>`, so the version prefix is bound to the signature as well as the claims.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from qrtrace.domain.venues import Venue
from qrtrace.errors import InputError

PREFIX = "QRT1"
SEED_BYTES = 32
SIGNATURE_BYTES = 64
# Real payloads are ~170 characters; the cap keeps hostile input from costing anything to reject.
MAX_PAYLOAD_CHARS = 2048
# Unix seconds that `datetime` can represent (years 1970..9999).
MAX_UNIX_SECONDS = 253_402_300_799
CLAIM_KEYS = frozenset({"v", "c", "k", "t"})
ZONE_CLAIM_KEYS = CLAIM_KEYS | {"z"}

_PAYLOAD_RE = re.compile(r"QRT1\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)", re.ASCII)


class ForgedVenueQrError(InputError):
    """A scanned venue QR is not one the authority issued (or was altered after issue)."""


@dataclass(frozen=True, slots=True)
class VenueQrClaims:
    venue_id: str
    commune_code: str
    category: str
    issued_at: datetime  # timezone-aware, UTC
    zone: str = ""  # the venue's zone this QR stands for; "" for the venue as a whole


def venue_signing_key(seed: bytes) -> Ed25519PrivateKey:
    """The authority's Ed25519 signing key derived from a 32-byte seed from the project keyring."""
    if not isinstance(seed, bytes | bytearray) or len(seed) != SEED_BYTES:
        size = len(seed) if isinstance(seed, bytes | bytearray) else type(seed).__name__
        raise InputError(f"The venue QR signing seed must be exactly {SEED_BYTES} bytes, got {size}.")
    return Ed25519PrivateKey.from_private_bytes(bytes(seed))


def venue_public_key(raw: bytes) -> Ed25519PublicKey:
    """The verification key from its 32 raw bytes, as distributed to scanners."""
    try:
        return Ed25519PublicKey.from_public_bytes(bytes(raw))
    except (TypeError, ValueError):
        raise InputError(f"A venue QR public key must be {SEED_BYTES} raw bytes.") from None


def encode_venue_qr(venue: Venue, private_key: Ed25519PrivateKey, issued_at: datetime, zone: str = "") -> str:
    """The signed QR text for `venue` (or for its `zone`, which it must have registered), issued at
    `issued_at` (timezone-aware; stored to the second)."""
    if zone and zone not in venue.zones:
        known = f"its zones are {', '.join(venue.zones)}" if venue.zones else "it has no zones"
        raise InputError(f"Venue {venue.venue_id} has no zone {zone!r}; {known}.")
    if issued_at.tzinfo is None or issued_at.utcoffset() is None:
        raise InputError("The venue QR issue time must carry a timezone offset.")
    seconds = int(issued_at.timestamp() // 1)
    if not 0 <= seconds <= MAX_UNIX_SECONDS:
        raise InputError(f"The venue QR issue time {issued_at.isoformat()} is before 1970.")
    for label, value in (
        ("venue id", venue.venue_id),
        ("commune code", venue.commune_code),
        ("category", venue.category),
    ):
        if not isinstance(value, str) or not value:
            raise InputError(f"Venue {venue.venue_id!r} has no {label}, so it cannot be issued a QR code.")
    claims: dict[str, object] = {"v": venue.venue_id, "c": venue.commune_code, "k": venue.category, "t": seconds}
    if zone:
        claims["z"] = zone
    try:
        claims_json = _canonical_json(claims)
    except UnicodeEncodeError:
        raise InputError(f"Venue {venue.venue_id!r} has text that is not valid Unicode.") from None
    signing_input = f"{PREFIX}.{_b64encode(claims_json)}"
    signature = private_key.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{_b64encode(signature)}"


def decode_venue_qr(payload: str, public_key: Ed25519PublicKey) -> VenueQrClaims:
    """Verify a scanned payload and return its claims; anything not issued as-is raises ForgedVenueQrError."""
    if not isinstance(payload, str):
        raise ForgedVenueQrError("The scanned venue QR code is not text.")
    # Scanners often append a newline; whitespace around the code carries no meaning.
    text = payload.strip(" \t\r\n")
    if len(text) > MAX_PAYLOAD_CHARS:
        raise ForgedVenueQrError("The scanned venue QR code is too long to be a qrtrace venue code.")
    match = _PAYLOAD_RE.fullmatch(text)
    if match is None:
        raise ForgedVenueQrError("The scanned QR code is not a qrtrace venue code (expected QRT1.<claims>.<sig>).")
    claims_b64, signature_b64 = match.groups()
    claims_bytes = _b64decode(claims_b64)
    signature = _b64decode(signature_b64)
    if claims_bytes is None or signature is None:
        raise ForgedVenueQrError("The scanned venue QR code is not valid base64url.")
    if len(signature) != SIGNATURE_BYTES:
        raise ForgedVenueQrError("The scanned venue QR code has a signature of the wrong length.")
    try:
        public_key.verify(signature, f"{PREFIX}.{claims_b64}".encode("ascii"))
    except InvalidSignature:
        raise ForgedVenueQrError(
            "The scanned venue QR code's signature does not match: it is forged or was altered."
        ) from None
    claims = _parse_claims(claims_bytes)
    if claims is None:
        raise ForgedVenueQrError("The scanned venue QR code is signed but its claims are malformed.")
    return claims


def _canonical_json(obj: dict[str, object]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes | None:
    """Strict unpadded base64url: None unless `text` is the one canonical encoding of its bytes."""
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    # Non-zero unused bits in the last character decode to the same bytes; refuse them so that no
    # two payload texts carry one signature.
    return data if _b64encode(data) == text else None


def _parse_claims(raw: bytes) -> VenueQrClaims | None:
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    if not isinstance(obj, dict) or set(obj) not in (CLAIM_KEYS, ZONE_CLAIM_KEYS):
        return None
    zone = obj.get("z", "")
    if not isinstance(zone, str) or ("z" in obj and not zone):
        return None
    venue_id, commune, category, seconds = obj["v"], obj["c"], obj["k"], obj["t"]
    if not all(isinstance(s, str) and s for s in (venue_id, commune, category)):
        return None
    # bool is an int subclass; a JSON `true` is not a time.
    if type(seconds) is not int or not 0 <= seconds <= MAX_UNIX_SECONDS:
        return None
    try:
        if _canonical_json(obj) != raw:
            return None
    except UnicodeEncodeError:  # a lone surrogate escaped as \udXXX in the JSON
        return None
    return VenueQrClaims(venue_id, commune, category, datetime.fromtimestamp(seconds, UTC), zone)
