"""The token book on disk: scrypt hashes of API tokens with their principal and expiry (never a secret).

A JSON file (0600) next to the key file by default (`QRTRACE_TOKEN_FILE`). `qrtrace tokens issue` adds
one and prints the token once; the server reads the file at start and whenever it changes on disk.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import orjson

from qrtrace.access import Principal, Role, TokenBook, TokenRecord, issue_token
from qrtrace.errors import InputError


@dataclass(frozen=True)
class IssuedToken:
    token: str
    record: TokenRecord


def _record_to_json(r: TokenRecord, label: str) -> dict:
    p = r.principal
    return {
        "token_id": r.token_id,
        "name": p.name,
        "role": str(p.role),
        "venues": sorted(p.venues),
        "commune_code": p.commune_code,
        "district_code": p.district_code,
        "salt": r.salt.hex(),
        "digest": r.digest.hex(),
        "expires_at_us": r.expires_at_us,
        "label": label,
    }


def _record_from_json(d: dict) -> TokenRecord:
    principal = Principal(
        name=d["name"],
        role=Role(d["role"]),
        venues=frozenset(d.get("venues") or ()),
        commune_code=d.get("commune_code"),
        district_code=d.get("district_code"),
    )
    return TokenRecord(d["token_id"], principal, bytes.fromhex(d["salt"]), bytes.fromhex(d["digest"]),
                       int(d["expires_at_us"]))  # fmt: skip


class TokenFile:
    """Read and write the token book; `label` groups tokens (the demo replaces its own set)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _entries(self) -> list[dict]:
        if not self.path.exists():
            return []
        try:
            return list(orjson.loads(self.path.read_bytes())["tokens"])
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f"The token file {self.path} is damaged ({exc}); issue new tokens.") from None

    def book(self) -> TokenBook:
        try:
            return TokenBook([_record_from_json(d) for d in self._entries()])
        except (KeyError, ValueError) as exc:
            raise InputError(f"The token file {self.path} has a bad entry ({exc}).") from None

    def entries(self) -> list[dict]:
        """Every kept record without its hash (for `qrtrace tokens list`)."""
        return [{k: v for k, v in d.items() if k not in ("salt", "digest")} for d in self._entries()]

    def issue(self, principal: Principal, expires_at_us: int, label: str = "") -> IssuedToken:
        token, record = issue_token(principal, expires_at_us)
        self._write([*self._entries(), _record_to_json(record, label)])
        return IssuedToken(token, record)

    def revoke(self, token_id: str) -> bool:
        entries = self._entries()
        kept = [d for d in entries if d["token_id"] != token_id]
        self._write(kept)
        return len(kept) < len(entries)

    def drop_label(self, label: str) -> None:
        self._write([d for d in self._entries() if d.get("label") != label])

    def mtime(self) -> float:
        try:
            return self.path.stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def _write(self, entries: list[dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(orjson.dumps({"tokens": entries}, option=orjson.OPT_INDENT_2))
        os.replace(tmp, self.path)
