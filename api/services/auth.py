"""Sign-in: the caller behind a bearer token, with failed attempts limited per client and per token id.

Decision: a verified token is remembered by its SHA-256 for five minutes so that scrypt runs once per token,
not once per request; expiry and revocation are still checked on every request.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from qrtrace.access import InvalidToken, Principal, TokenExpired, TooManyAttempts
from qrtrace.api.services.core import TOKEN_FILE_CHECK_S, ServiceCore
from qrtrace.api.services.errors import Unavailable
from qrtrace.errors import InputError
from qrtrace.sinks.audit import now_us

log = logging.getLogger("qrtrace.api")

TOKEN_CACHE_SECONDS = 300


class AuthService(ServiceCore):
    """Authentication of API tokens (the app's `Caller` dependency and the scanner door call it)."""

    def authenticate(self, header: str | None, client: str = "") -> Principal:
        """The caller behind an `Authorization: Bearer qrt_...` header, or InvalidToken with the reason.

        Failed attempts (a malformed, unknown or wrong token; not an expired one) are counted per client
        address and per token id; past the limit the client or token id gets TooManyAttempts (429) until
        the window has moved on. A token already verified (cached) keeps working, so someone guessing at a
        token id does not lock its holder out mid-session."""
        principal = self.cached_caller(header)
        if principal is not None:
            return principal
        token = header[7:].strip()  # type: ignore[index]  # cached_caller refused a header without it
        self._reload_tokens(now=True)
        now = now_us()
        principal = self._verify_limited(token, now, client)
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[hashlib.sha256(token.encode()).digest()] = (token.split("_", 2)[1], time.monotonic())
        return principal

    def cached_caller(self, header: str | None) -> Principal | None:
        """The caller if its token was verified recently (no scrypt run: cheap enough for the event loop of the
        scanner door), None if it needs `authenticate`; InvalidToken for a missing header, and for a cached
        token since revoked or expired."""
        if not header or not header.lower().startswith("bearer "):
            raise InvalidToken("Sign in first: send 'Authorization: Bearer qrt_...' with your API token.")
        self._reload_tokens()
        cached = self._verified.get(hashlib.sha256(header[7:].strip().encode()).digest())
        if not cached or time.monotonic() - cached[1] >= TOKEN_CACHE_SECONDS:
            return None
        record = self._book.records.get(cached[0])
        if record is None:
            raise InvalidToken("The token is not valid.")  # revoked since it was cached
        if now_us() >= record.expires_at_us:
            raise InvalidToken("The token has expired; ask an administrator for a new one.")
        return record.principal

    def _verify_limited(self, token: str, now: int, client: str) -> Principal:
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != "qrt":  # malformed: refused without a scrypt run, cannot succeed
            return self._book.verify(token, now)
        keys = [(self._failed_by_client, client), (self._failed_by_token, parts[1][:64])]
        at = time.monotonic()
        with self._failures_lock:
            wait = max((w.retry_after(k, at) or 0.0 for w, k in keys), default=0.0)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise TooManyAttempts(f"Too many failed sign-in attempts; wait {seconds} s, then sign in with a valid "
                                  "token.", seconds)  # fmt: skip
        try:
            return self._book.verify(token, now)
        except TokenExpired:
            raise
        except InvalidToken:
            with self._failures_lock:
                for w, k in keys:
                    w.fail(k, at)
            raise

    def _reload_tokens(self, now: bool = False) -> None:
        # The file's mtime at most every TOKEN_FILE_CHECK_S (a stat per request was a tenth of a scanner's
        # request): a revoked token still stops working within that half second. A token not verified yet
        # (`now`: its scrypt run costs far more) sees the file as it is, so a token issued a moment ago works.
        at = time.monotonic()
        if not now and at - self._book_checked_at < TOKEN_FILE_CHECK_S:
            return
        self._book_checked_at = at
        mtime = self._tokens.mtime()
        if mtime != self._book_mtime:
            try:
                self._book = self._tokens.book()
            except InputError as exc:
                log.error("token file unreadable: %s", exc)
                raise Unavailable("The server cannot read its token file; an administrator must repair it.") from None
            self._book_mtime = mtime
            self._verified.clear()
