"""Identity and privacy: keyed pseudonyms for everything stored, an encrypted vault for re-identification.

A plain hash of a phone number is reversible by enumerating the ~10^9 numbers, so pseudonyms are
HMAC-SHA256 under a secret key. The raw identifier and contact details are kept only sealed
(AES-GCM under a second key) so that roles allowed to re-identify can call an F1.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from qrtrace.errors import InputError, QrtraceError

PSEUDONYM_BYTES = 16  # 128-bit pseudonyms: collision-free at national scale, half the width of SHA-256
_PHONE = re.compile(r"^(?:\+?84|0)(\d{9})$")
_SEPARATORS = re.compile(r"[\s.\-()]")


@dataclass(frozen=True)
class Keyring:
    """The project's secrets. Kept outside the store so a copied store cannot be re-identified."""

    pseudonym_key: bytes
    vault_key: bytes
    venue_signing_seed: bytes

    @classmethod
    def generate(cls) -> Keyring:
        return cls(secrets.token_bytes(32), secrets.token_bytes(32), secrets.token_bytes(32))

    def to_json(self) -> str:
        enc = {k: base64.b64encode(getattr(self, k)).decode() for k in self.__dataclass_fields__}
        return json.dumps(enc, indent=1)

    @classmethod
    def from_json(cls, text: str, source: str) -> Keyring:
        try:
            raw = json.loads(text)
            return cls(**{k: base64.b64decode(raw[k]) for k in cls.__dataclass_fields__})
        except (ValueError, KeyError, TypeError) as exc:
            raise QrtraceError(f"The key file {source} is damaged ({exc}); restore it from backup.") from None


def load_or_create_keyring(path: Path) -> Keyring:
    """Read the key file, creating it (mode 0600) on first use."""
    if path.exists():
        return Keyring.from_json(path.read_text(), str(path))
    keyring = Keyring.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(keyring.to_json())
    os.replace(tmp, path)
    return keyring


def normalise_identifier(raw: str) -> str:
    """One spelling per person: phone numbers lose separators and +84 becomes 0; other ids are upper-cased."""
    compact = _SEPARATORS.sub("", raw.strip())
    match = _PHONE.match(compact)
    if match:
        return "0" + match.group(1)
    return compact.upper()


def phone_of(identifier: str) -> str:
    """The phone number an identifier is, normalised (a person who checks in with a phone can be called on
    it), or "" for a citizen id, a personal-QR id or anything else."""
    canon = normalise_identifier(identifier)
    return canon if _PHONE.match(canon) else ""


def normalise_contact(raw: str) -> str:
    """One spelling per phone number (as `normalise_identifier`), so a re-registered number is no change."""
    compact = _SEPARATORS.sub("", raw.strip())
    match = _PHONE.match(compact)
    return "0" + match.group(1) if match else compact


@dataclass(frozen=True)
class ContactChanges:
    """What a contact directory adds to the contacts already known: new numbers and changed ones."""

    added: dict[str, str]  # person -> contact, for people with no contact yet
    changed: dict[str, tuple[str, str]]  # person -> (previous contact, new contact)

    def rows(self) -> dict[str, str]:
        """Every contact to append: the added and the new side of the changed."""
        return {**self.added, **{p: new for p, (_, new) in self.changed.items()}}


def merge_contacts(current: Mapping[str, str], incoming: Mapping[str, str]) -> ContactChanges:
    """Contacts are merged, never overwritten by nothing: an empty incoming value keeps what is known, the
    same number again is no change, and a different one is a change (appended, so history stays)."""
    added: dict[str, str] = {}
    changed: dict[str, tuple[str, str]] = {}
    for person, raw in incoming.items():
        new = normalise_contact(raw)
        if not new:
            continue
        old = current.get(person, "")
        if not old:
            added[person] = new
        elif normalise_contact(old) != new:
            changed[person] = (old, new)
    return ContactChanges(added, changed)


@dataclass(frozen=True)
class ContactEntry:
    """One contact a person was known by, from when, and which source gave it."""

    contact: str
    seen_at_us: int
    source: str


def contact_timeline(entries: Iterable[ContactEntry]) -> list[ContactEntry]:
    """A person's contacts oldest first, a number repeated without change in between kept once (at its first
    time): stores append the same number again (retries, an old producer's rows) and that is no change."""
    out: list[ContactEntry] = []
    for entry in sorted(entries, key=lambda e: (e.seen_at_us, e.contact)):
        if entry.contact and (not out or out[-1].contact != entry.contact):
            out.append(entry)
    return out


def current_contact(identifier: str, timeline: Sequence[ContactEntry]) -> str:
    """The number to call: the latest known contact; for someone never given one, the identifier itself if it
    is a phone number; else "" (a citizen id or personal QR with no registered phone cannot be called)."""
    return timeline[-1].contact if timeline else phone_of(identifier)


class Pseudonymiser:
    """Maps identifiers to keyed-HMAC pseudonyms, batch-wise, with a bounded memo (people repeat)."""

    def __init__(self, key: bytes, memo_limit: int = 2_000_000) -> None:
        self._key = key
        self._memo: dict[str, str] = {}
        self._memo_limit = memo_limit

    def one(self, identifier: str) -> str:
        canon = normalise_identifier(identifier)
        return hmac.digest(self._key, canon.encode(), "sha256")[:PSEUDONYM_BYTES].hex()  # OpenSSL one-shot

    def many(self, identifiers: Sequence[str]) -> list[str]:
        """Pseudonyms for a batch; each distinct identifier is hashed once."""
        memo = self._memo
        missing = {i for i in identifiers if i not in memo}
        if len(memo) + len(missing) > self._memo_limit:
            memo.clear()
        for ident in missing:
            memo[ident] = self.one(ident)
        return [memo[i] for i in identifiers]


class Vault:
    """AES-GCM sealing of identifiers and contact details; opening is the re-identification step."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, context: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, sealed: str, context: str) -> str:
        try:
            blob = base64.b64decode(sealed)
            return self._aead.decrypt(blob[:12], blob[12:], context.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise InputError("A sealed record could not be opened with this key file.") from exc

    def seal_many(self, values: Iterable[str], context: str) -> list[str]:
        return [self.seal(v, context) for v in values]
