"""Request bodies of the API. Strict: a wrong type is a 422 naming the field, never a silent coercion."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
MAX_CHECKINS = 5000  # per request; larger batches are refused with 413
MAX_TRACE_CASES = 20_000


# Times arrive as ISO 8601 text; parsing text into a time is the point, so these fields are not strict.
Time = Annotated[AwareDatetime, Field(strict=False)]


NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"  # names and identifiers are one line of printable text


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)


class CheckinIn(Strict):
    """One scan, as in the ingest contract (docs/design.md), plus the scanned venue QR when there is one.
    The schema checks shape and types (else 422 for the batch); the edge checks values (else a dead letter)."""

    scan_id: str = Field(min_length=1, max_length=128)
    venue_id: str = Field(min_length=1, max_length=64)
    person_id: str = Field(min_length=1, max_length=64, pattern=NO_CONTROL)
    # Values are checked by the edge, not here: a scan with an unknown direction or mode is one dead letter
    # (data, counted by reason), not a refused batch that would hold back the scanner's good scans.
    direction: str = Field(max_length=16, description="in | out")
    event_time: str = Field(max_length=40, description="ISO 8601 with offset")
    mode: str = Field(max_length=32, description="venue_qr | personal_qr | manual")
    scanner_id: str = Field(min_length=1, max_length=64)
    declaration: dict[str, str | int | float | bool | None] | None = None
    venue_qr: str | None = Field(None, max_length=600, description="The venue QR text the app scanned")
    zone: str | None = Field(None, max_length=64, description="The venue's zone (a zone's QR names it); optional")


class VenueIn(Strict):
    venue_id: str = Field(min_length=1, max_length=64, pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=200, pattern=NO_CONTROL)
    category: str = Field(min_length=1, max_length=64)
    commune_code: str = Field(min_length=1, max_length=16, pattern=r"^[0-9]+$")
    capacity: int = Field(ge=1, le=1_000_000)
    establishment_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=NO_CONTROL,
                                         description="Its entry in the commune's deployment census (confirmed "
                                                     "by the officer): registering links the two")  # fmt: skip


class ZoneIn(Strict):
    zone: str = Field(min_length=1, max_length=64, pattern=NO_CONTROL,
                      description="A zone of the venue (a market's section, a wedding's hall); no ';'")


class CaseIn(Strict):
    case_id: str = Field(min_length=1, max_length=64, pattern=ID_PATTERN)
    person_id: str = Field(min_length=1, max_length=64, pattern=NO_CONTROL,
                           description="The identifier the case checked in with")
    infectious_from: Time
    infectious_to: Time


class TraceIn(Strict):
    case_ids: list[str] = Field(min_length=1, max_length=MAX_TRACE_CASES)
    depth: int = Field(2, ge=1, le=6)
    grace_minutes: float = Field(30, ge=0, le=1440)
    min_overlap_minutes: float = Field(0, ge=0, le=1440)
    until: Time | None = None
    purpose: str = Field(min_length=3, max_length=300, pattern=NO_CONTROL,
                         description="Why this trace is run (audited)")
    rule: str = Field("qrtrace-2026", max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$",
                      description="Risk rule set, by name (GET /api/rules lists them)")
    sources: Literal["all", "close"] = Field("all", description="F(k+1) sources: all contacts or close ones only")


class NotifyIn(Strict):
    """Which contacts to notify and why; no gateway: that is the server's setting (extra fields are refused)."""

    tier: Literal["close", "casual", "all"] = "all"
    purpose: str = Field(min_length=3, max_length=300, pattern=NO_CONTROL,
                         description="Why the phone numbers are opened (audited)")


class Accepted(BaseModel):
    trace_id: str
    status: str
    hops_done: int
    depth: int


FIRST_YEAR, LAST_YEAR = 2000, 2100  # outside this a time is a typo, and some dates cannot be shown at all


def to_us(value: datetime, name: str) -> int:
    """A timezone-aware time as UTC microseconds; InputError (400) without an offset or outside 2000-2100."""
    from qrtrace.errors import InputError

    if value.tzinfo is None or value.utcoffset() is None:
        raise InputError(f"{name} needs a UTC offset, such as 2021-07-20T08:00:00+07:00.")
    if not FIRST_YEAR <= value.year <= LAST_YEAR or not FIRST_YEAR <= value.astimezone().year <= LAST_YEAR:
        raise InputError(f"{name} {value.isoformat()} is outside {FIRST_YEAR}-{LAST_YEAR}.")
    return round(value.timestamp() * 1_000_000)


class CensusLinkIn(Strict):
    """Link a registered venue to its deployment-census establishment (the officer confirms a match)."""

    venue_id: str = Field(min_length=1, max_length=64, pattern=ID_PATTERN)
    establishment_id: str = Field(min_length=1, max_length=64, pattern=NO_CONTROL)
