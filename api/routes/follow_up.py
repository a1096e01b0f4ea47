"""Contact follow-up: a health station's list of its commune's contacts, a record with its history, status
changes, a positive contact declared as a case in one step, the phone number to call, and exports (the
district's spreadsheet, SORMAS and Go.Data contact imports)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import Field

from qrtrace.api.app import Caller, Service, attachment
from qrtrace.api.models import ID_PATTERN, NO_CONTROL, Strict, Time, to_us

router = APIRouter(tags=["contact follow-up"])
Commune = Annotated[str | None, Query(max_length=16, pattern=r"^[0-9]+$", description="One commune of your area")]
Status = Annotated[str | None, Query(max_length=32, description="Only records of this status")]
Lang = Literal["vi", "en"]


class FollowUpIn(Strict):
    """A status change (with its date; a quarantine also its end) and/or a note."""

    status: str | None = Field(None, max_length=32, description="not_reached | reached | quarantined | "
                               "tested_negative | tested_positive (declares the case: see /positive)")
    date: Time | None = Field(None, description="When (quarantine start, test date); default now")
    until: Time | None = Field(None, description="End of the quarantine; default 14 days after its start")
    note: str | None = Field(None, max_length=1000, pattern=NO_CONTROL)


class PositiveIn(Strict):
    """tested_positive and the case (F0) in one step; every field has a default."""

    tested_on: Time | None = Field(None, description="Test date; default now")
    case_id: str | None = Field(None, min_length=1, max_length=64, pattern=ID_PATTERN,
                                description="The new case's id; default F0-<record>")
    infectious_from: Time | None = Field(None, description="Default: test date minus 2 days")
    infectious_to: Time | None = Field(None, description="Default: the test date")
    note: str | None = Field(None, max_length=1000, pattern=NO_CONTROL)


def _us(value, name: str) -> int | None:  # type: ignore[no-untyped-def]
    return to_us(value, name) if value is not None else None


@router.get("/follow-ups")
def list_follow_ups(who: Caller, svc: Service, commune: Commune = None, status: Status = None,
                    lang: Lang = "vi") -> dict:  # fmt: skip
    """The follow-up records of your area (a health station: its commune), with counts per status."""
    return svc.list_follow_ups(who, commune, status, lang)


@router.get("/follow-ups/export", response_class=Response,
            responses={200: {"content": {"text/csv": {}, "application/vnd.openxmlformats-officedocument."
                                         "spreadsheetml.sheet": {}}}})  # fmt: skip
def export_follow_ups(
    who: Caller, svc: Service,
    purpose: Annotated[str, Query(min_length=3, max_length=300, description="Why (audited)")],
    format: Literal["district-xlsx", "district-csv", "sormas", "godata"] = "district-xlsx",
    commune: Commune = None, status: Status = None, lang: Lang = "vi",
) -> Response:  # fmt: skip
    """The area's records as the district spreadsheet (XLSX or CSV, Vietnamese headers), a SORMAS contact import
    (CSV, two header rows) or a Go.Data contact import (CSV). Phones only for the roles that call (audited)."""
    body, media, ext = svc.export_follow_ups(who, format, commune, status, purpose, lang)
    return Response(body, media_type=media,
                    headers={"Content-Disposition": attachment(f"follow-ups-{format}.{ext}")})  # fmt: skip


@router.get("/follow-ups/{follow_up_id}")
def get_follow_up(follow_up_id: str, who: Caller, svc: Service, lang: Lang = "vi") -> dict:
    """One record with its history (who changed what, when)."""
    return svc.get_follow_up(who, follow_up_id, lang)


@router.post("/follow-ups/{follow_up_id}")
def update_follow_up(follow_up_id: str, body: FollowUpIn, who: Caller, svc: Service) -> dict:
    """Change a record's status and/or add a note (audited, kept in its history); tested_positive is final."""
    return svc.update_follow_up(who, follow_up_id, body.status, _us(body.date, "date"), _us(body.until, "until"),
                                body.note)  # fmt: skip


@router.post("/follow-ups/{follow_up_id}/positive")
def declare_positive(follow_up_id: str, body: PositiveIn, who: Caller, svc: Service) -> dict:
    """Tested positive: the contact becomes a case (F0) in one step; the answer names the case to trace."""
    return svc.declare_positive(who, follow_up_id, _us(body.tested_on, "tested_on"), body.case_id,
                                _us(body.infectious_from, "infectious_from"), _us(body.infectious_to, "infectious_to"),
                                body.note)  # fmt: skip


@router.get("/follow-ups/{follow_up_id}/contact")
def contact_of_follow_up(
    follow_up_id: str, who: Caller, svc: Service,
    purpose: Annotated[str, Query(min_length=3, max_length=300, description="Why (audited)")],
) -> dict:  # fmt: skip
    """The identifier and phone number to call (re-identification, audited with the purpose): a health station
    for its own commune's records, an epidemiologist for any."""
    return svc.contact_of_follow_up(who, follow_up_id, purpose)


@router.post("/traces/{trace_id}/follow-ups")
def follow_ups_from_trace(trace_id: str, who: Caller, svc: Service) -> dict:
    """Create the follow-up records of a stored trace (idempotent; traces run through the API get them
    when they finish): counts of contacts and of records created now."""
    return svc.follow_ups_from_trace(who, trace_id)
