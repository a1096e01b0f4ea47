"""The deployment census: upload a commune's list of establishments that must deploy QR, and link a
registered venue to its entry (suggested matches, confirmed by the officer)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query

from qrtrace.api.app import Caller, Service
from qrtrace.api.models import CensusLinkIn

router = APIRouter(prefix="/census", tags=["census"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


BODY = {"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}},
                                   XLSX: {"schema": {"type": "string", "format": "binary"}}}}}  # fmt: skip


@router.post("", openapi_extra=BODY)
def import_census(
    who: Caller,
    svc: Service,
    body: Annotated[bytes, Body(media_type="text/csv", description="The census file (CSV or XLSX) as the body")] = b"",
    filename: Annotated[str, Query(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")] = "",
) -> dict:
    """Import the establishments of your area that must deploy QR from a CSV or XLSX sent as the body
    (headers establishment_id,name,category,commune_code,address[,venue_id] or the Vietnamese ones). Good rows
    are imported; `refused` names every other row with its row, column and reason (rows of communes outside
    your area among them)."""
    return svc.import_census(who, body, filename)


@router.get("/matches")
def census_matches(who: Caller, svc: Service, venue_id: Annotated[str, Query(min_length=1, max_length=64)]) -> dict:
    """Census establishments a registered venue of your area may be: same commune, not linked yet, similar
    name (same category ranks higher); the venue's own link when it has one."""
    return svc.census_matches(who, venue_id)


@router.post("/link")
def link_census(body: CensusLinkIn, who: Caller, svc: Service) -> dict:
    """Confirm that a registered venue of your area is this establishment of its commune's census (audited)."""
    return svc.link_census(who, body.venue_id, body.establishment_id)
