"""Who may do what, where: roles, scopes and API tokens. Pure: no I/O, no web framework.

The HTTP API (issue 5) asks `authorize` before every action and `TokenBook.verify` for every request.
Decisions kept here so they can be read in one place and tested without a server:
- every role is scoped: a scanner to its venue, a venue owner to its venues, a commune officer to its
  commune, a district officer to the communes of its district; epidemiologists and admins are
  province-wide;
- re-identification (identifiers and phone numbers in call lists) is for epidemiologists only; admins
  run the system, read the audit log and may re-run an epidemiologist's declared case and export its
  call list, but with pseudonyms only, and they cannot declare a case (which would let them look up a
  named person's movements): they never see who was exposed (least privilege);
- tokens are random secrets shown once; only a scrypt hash (a memory-hard KDF) is kept, with an
  expiry. A token names its record (`qrt_<id>_<secret>`) so verification is one KDF run, not a scan.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    SCANNER = "scanner"
    VENUE_OWNER = "venue_owner"
    COMMUNE_OFFICER = "commune_officer"
    DISTRICT_OFFICER = "district_officer"
    EPIDEMIOLOGIST = "epidemiologist"
    ADMIN = "admin"
    HEALTH_STATION = "health_station"


class Action(StrEnum):
    INGEST_CHECKINS = "ingest_checkins"
    REGISTER_VENUE = "register_venue"
    LIST_VENUES = "list_venues"
    ISSUE_VENUE_QR = "issue_venue_qr"
    DECLARE_CASE = "declare_case"
    RUN_TRACE = "run_trace"
    EXPORT_CALL_LIST = "export_call_list"
    REIDENTIFY = "reidentify"
    READ_COVERAGE = "read_coverage"
    EXPORT_COVERAGE = "export_coverage"
    READ_OPERATIONS = "read_operations"
    READ_AUDIT = "read_audit"
    IMPORT_PAPER_LOG = "import_paper_log"  # a venue's paper log (people without phones) as manual check-ins
    IMPORT_CENSUS = "import_census"  # the deployment census: import a commune's list, link a venue to its entry
    READ_FOLLOW_UP = "read_follow_up"
    UPDATE_FOLLOW_UP = "update_follow_up"
    EXPORT_FOLLOW_UP = "export_follow_up"
    # Open the identifier and phone of a follow-up record to call the person (re-identification, audited with
    # the purpose): narrower than REIDENTIFY, scoped to the caller's own records.
    CALL_FOLLOW_UP = "call_follow_up"


A = Action
PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.SCANNER: frozenset({A.INGEST_CHECKINS}),
    Role.VENUE_OWNER: frozenset({A.LIST_VENUES, A.ISSUE_VENUE_QR, A.IMPORT_PAPER_LOG}),
    Role.COMMUNE_OFFICER: frozenset(
        {A.REGISTER_VENUE, A.LIST_VENUES, A.ISSUE_VENUE_QR, A.READ_COVERAGE, A.EXPORT_COVERAGE, A.IMPORT_PAPER_LOG}
    ),
    Role.DISTRICT_OFFICER: frozenset(
        {A.REGISTER_VENUE, A.LIST_VENUES, A.ISSUE_VENUE_QR, A.READ_COVERAGE, A.EXPORT_COVERAGE, A.IMPORT_PAPER_LOG}
    ),
    Role.EPIDEMIOLOGIST: frozenset(
        {A.LIST_VENUES, A.DECLARE_CASE, A.RUN_TRACE, A.EXPORT_CALL_LIST, A.REIDENTIFY, A.READ_COVERAGE}
    ),
    # Admins store no check-ins (neither a scanner's nor a paper log's) and change no follow-up record: they
    # run the system.
    Role.ADMIN: frozenset(
        set(Action) - {A.REIDENTIFY, A.INGEST_CHECKINS, A.DECLARE_CASE, A.IMPORT_PAPER_LOG, A.UPDATE_FOLLOW_UP,
                       A.CALL_FOLLOW_UP}
    ),
    Role.HEALTH_STATION: frozenset({A.READ_FOLLOW_UP, A.UPDATE_FOLLOW_UP, A.EXPORT_FOLLOW_UP, A.CALL_FOLLOW_UP}),
}
# Contact follow-up (issue 15): a commune health station reads, updates and exports its own commune's
# records (and opens their phone numbers: qrtrace/followup/, audited with a purpose, only for its own
# records); epidemiologists do all of it province-wide; commune and district officers read and export their
# area's list (pseudonyms only: they do not call people); admins read and export with pseudonyms only and
# never change a record (they run the system, they do not follow people up).
PERMISSIONS[Role.EPIDEMIOLOGIST] |= {A.READ_FOLLOW_UP, A.UPDATE_FOLLOW_UP, A.EXPORT_FOLLOW_UP, A.CALL_FOLLOW_UP}
PERMISSIONS[Role.COMMUNE_OFFICER] |= {A.READ_FOLLOW_UP, A.EXPORT_FOLLOW_UP}
PERMISSIONS[Role.DISTRICT_OFFICER] |= {A.READ_FOLLOW_UP, A.EXPORT_FOLLOW_UP}
# The deployment census is the officers' own list of their area (admins have it too).
PERMISSIONS[Role.COMMUNE_OFFICER] |= {A.IMPORT_CENSUS}
PERMISSIONS[Role.DISTRICT_OFFICER] |= {A.IMPORT_CENSUS}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a role and the place it is bound to (if its role is scoped)."""

    name: str
    role: Role
    venues: frozenset[str] = frozenset()  # scanner: exactly one; venue owner: one or more
    commune_code: str | None = None  # commune officer, health station
    district_code: str | None = None  # district officer


@dataclass(frozen=True)
class Scope:
    """What a request touches. None means "not about one place" (e.g. a province-wide list)."""

    venue_id: str | None = None
    commune_code: str | None = None


class AccessDenied(Exception):
    """Refused, with a sentence saying why (the API answers 403 with it)."""


@dataclass(frozen=True)
class Geography:
    """Reference data the scope checks need: each commune's district, each venue's commune."""

    district_of_commune: Mapping[str, str]
    commune_of_venue: Mapping[str, str] = field(default_factory=dict)

    def commune(self, scope: Scope) -> str | None:
        if scope.commune_code is not None:
            return scope.commune_code
        return self.commune_of_venue.get(scope.venue_id) if scope.venue_id is not None else None


def authorize(who: Principal, action: Action, scope: Scope, geo: Geography) -> None:
    """Return if `who` may do `action` on `scope`; raise AccessDenied with the reason otherwise."""
    if action not in PERMISSIONS[who.role]:
        raise AccessDenied(f"The role {who.role} may not {action.replace('_', ' ')}.")
    if who.role in (Role.EPIDEMIOLOGIST, Role.ADMIN):
        return
    if who.role in (Role.SCANNER, Role.VENUE_OWNER):
        if scope.venue_id is None or scope.venue_id not in who.venues:
            raise AccessDenied(f"{who.name} is bound to its own venue(s); this request is about another.")
        return
    commune = geo.commune(scope)
    if scope.commune_code is None and scope.venue_id is not None:
        # About one venue: the same sentence for a venue elsewhere and for no venue at all, naming only the
        # caller's own area, so an officer cannot learn which venue ids exist or where they are.
        if not _in_area(who, commune, geo):
            officer = who.role in (Role.COMMUNE_OFFICER, Role.HEALTH_STATION)
            area = f"commune {who.commune_code}" if officer else f"district {who.district_code}"
            raise AccessDenied(f"{who.name} may only reach the venues of {area}; venue {scope.venue_id} is not one "
                               "of them.")  # fmt: skip
        return
    if commune is None:
        raise AccessDenied(f"A {who.role} must name a commune or venue within its area.")
    if who.role in (Role.COMMUNE_OFFICER, Role.HEALTH_STATION) and commune != who.commune_code:
        raise AccessDenied(f"{who.name} may only see commune {who.commune_code}, not {commune}.")
    if who.role is Role.DISTRICT_OFFICER and geo.district_of_commune.get(commune) != who.district_code:
        raise AccessDenied(f"{who.name} may only see the communes of district {who.district_code}.")


def _in_area(who: Principal, commune: str | None, geo: Geography) -> bool:
    if commune is None:
        return False
    if who.role in (Role.COMMUNE_OFFICER, Role.HEALTH_STATION):
        return commune == who.commune_code
    return geo.district_of_commune.get(commune) == who.district_code


def visible_communes(who: Principal, geo: Geography) -> frozenset[str] | None:
    """The communes a report may show to `who` (None: all of them). Lists are filtered, never leaked."""
    if who.role in (Role.COMMUNE_OFFICER, Role.HEALTH_STATION):
        return frozenset({who.commune_code} if who.commune_code else set())
    if who.role is Role.DISTRICT_OFFICER:
        return frozenset(c for c, d in geo.district_of_commune.items() if d == who.district_code)
    if who.role in (Role.EPIDEMIOLOGIST, Role.ADMIN):
        return None
    return frozenset()


# -- tokens -------------------------------------------------------------------------------------------

SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}  # ~16 MB, tens of ms per check: OWASP's scrypt floor


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    principal: Principal
    salt: bytes
    digest: bytes
    expires_at_us: int


class InvalidToken(Exception):
    """Missing, malformed, unknown, wrong or expired token (the API answers 401 with the sentence)."""


class TokenExpired(InvalidToken):
    """A genuine token past its expiry: refused, but not a guess (not counted as a failed attempt)."""


def issue_token(principal: Principal, expires_at_us: int) -> tuple[str, TokenRecord]:
    """A new token (shown once) and the record to keep (its scrypt hash, never the secret)."""
    token_id, secret, salt = secrets.token_hex(8), secrets.token_urlsafe(32), secrets.token_bytes(16)
    record = TokenRecord(token_id, principal, salt, _digest(secret, salt), expires_at_us)
    return f"qrt_{token_id}_{secret}", record


class TokenBook:
    """The kept token records, by id."""

    def __init__(self, records: list[TokenRecord] | None = None) -> None:
        self.records = {r.token_id: r for r in records or []}

    def add(self, record: TokenRecord) -> None:
        self.records[record.token_id] = record

    def verify(self, token: str, now_us: int) -> Principal:
        """The principal a presented token stands for, or InvalidToken with the reason."""
        parts = token.split("_", 2) if token else []
        if len(parts) != 3 or parts[0] != "qrt":
            raise InvalidToken("The token is missing or malformed; send 'Authorization: Bearer qrt_...'.")
        record = self.records.get(parts[1])
        # An unknown id costs the same scrypt run as a wrong secret (against a dummy hash that matches
        # nothing), so the time of a refusal does not tell which token ids exist.
        salt, digest = (record.salt, record.digest) if record is not None else (_DUMMY_SALT, _DUMMY_DIGEST)
        matches = hmac.compare_digest(_digest(parts[2], salt), digest)
        if record is None or not matches:
            raise InvalidToken("The token is not valid.")
        if now_us >= record.expires_at_us:
            raise TokenExpired("The token has expired; ask an administrator for a new one.")
        return record.principal


# A random salt and digest no secret is known to hash to: what an unknown token id is checked against.
_DUMMY_SALT, _DUMMY_DIGEST = secrets.token_bytes(16), secrets.token_bytes(SCRYPT["dklen"])


class TooManyAttempts(Exception):
    """Too many failed sign-ins from one client or for one token id (the API answers 429 with the sentence
    and `Retry-After: retry_after_s`)."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class FailureWindow:
    """Failed attempts per key (a client address, a token id) in a sliding window of `window_s` seconds.

    Pure: the caller passes the clock. Memory is bounded: at most `max_keys` keys are tracked (the ones
    whose last failure is oldest are forgotten first), each with at most `limit` timestamps."""

    def __init__(self, limit: int, window_s: float, max_keys: int = 100_000) -> None:
        self.limit, self.window_s, self.max_keys = limit, window_s, max_keys
        self._failures: dict[str, list[float]] = {}

    def retry_after(self, key: str, now: float) -> float | None:
        """Seconds until `key` may try again, or None if it may try now."""
        times = [t for t in self._failures.get(key, ()) if t > now - self.window_s]
        if times:
            self._failures[key] = times
        else:
            self._failures.pop(key, None)
        if len(times) < self.limit:
            return None
        return times[-self.limit] + self.window_s - now

    def fail(self, key: str, now: float) -> None:
        """Count one failed attempt for `key` at `now`."""
        times = [t for t in self._failures.pop(key, ()) if t > now - self.window_s][-(self.limit - 1) :]
        self._failures[key] = [*times, now] if self.limit > 1 else [now]  # re-inserted: newest last
        while len(self._failures) > self.max_keys:
            del self._failures[next(iter(self._failures))]


def _digest(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, **SCRYPT)  # type: ignore[arg-type]
