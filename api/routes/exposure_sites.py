"""Exposure sites: epidemiologists publish and withdraw a case's venues and times (/api, with a token);
anyone reads the active ones (/public, without a token) as JSON, CSV or the public page."""

from __future__ import annotations

from datetime import date
from importlib import resources
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import Field

from qrtrace.api.app import Caller, Service
from qrtrace.api.models import NO_CONTROL, Strict, Time, to_us
from qrtrace.errors import InputError

router = APIRouter(tags=["exposure sites"])
public_router = APIRouter(tags=["public"])
PUBLIC = resources.files("qrtrace.api").joinpath("public")
PUBLIC_CACHE = "public, max-age=60"
Commune = Annotated[str | None, Query(max_length=16, pattern=r"^[0-9]+$", description="A commune code")]


class SitesIn(Strict):
    """Publish the sites of a case: its identifier and window, or a declared case (window optional)."""

    person_id: str | None = Field(None, min_length=1, max_length=64, pattern=NO_CONTROL,
                                  description="The identifier the case checked in with")
    case_id: str | None = Field(None, min_length=1, max_length=64, description="A declared case (POST /api/cases)")
    from_: Time | None = Field(None, alias="from", description="Start of the infectious window")
    to: Time | None = Field(None, description="End of the infectious window")
    purpose: str = Field(min_length=3, max_length=300, pattern=NO_CONTROL, description="Why (audited)")
    advice: str | None = Field(None, max_length=1000, pattern=NO_CONTROL, description="Advice (Vietnamese)")
    advice_en: str | None = Field(None, max_length=1000, pattern=NO_CONTROL, description="Advice in English")


class WithdrawIn(Strict):
    purpose: str = Field(min_length=3, max_length=300, pattern=NO_CONTROL, description="Why (audited)")


@router.post("/exposure-sites", status_code=201)
def publish(body: SitesIn, who: Caller, svc: Service) -> dict:
    """Publish a case's exposure sites (each venue visited in the window, from arrival to departure plus the
    trace grace, overlapping windows merged); audited. Publishing the same case and window again writes
    nothing new. A case with no visit in the window is a 400."""
    from_us = to_us(body.from_, "from") if body.from_ else None
    until_us = to_us(body.to, "to") if body.to else None
    return svc.publish_exposure_sites(who, body.person_id, body.case_id, from_us, until_us, body.purpose,
                                      body.advice, body.advice_en)  # fmt: skip


@router.get("/exposure-sites")
def list_sites(
    who: Caller, svc: Service, commune: Commune = None,
    all: Annotated[bool, Query(description="Withdrawn sites too")] = False,
    lang: Literal["vi", "en"] = "vi",
) -> list[dict]:  # fmt: skip
    """The published sites in the caller's area, with their case ids (never a pseudonym)."""
    return svc.list_exposure_sites(who, commune, all, lang)


@router.post("/exposure-sites/{site_id}/withdraw")
def withdraw(site_id: str, body: WithdrawIn, who: Caller, svc: Service) -> dict:
    """Withdraw a site from the public list; audited."""
    return svc.withdraw_exposure_site(who, site_id, body.purpose)


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"date {value!r} is not a day such as 2021-07-20 (YYYY-MM-DD).") from None


def _public(request: Request, svc: Service, fmt: str, commune: str | None, day: str | None, lang: str,
            if_none_match: str | None) -> Response:  # fmt: skip
    client = request.client.host if request.client else ""
    answer = svc.public_exposure_sites(client, fmt, commune, _day(day), lang, if_none_match)
    headers = {"Cache-Control": PUBLIC_CACHE, "ETag": answer.etag, "X-Content-Type-Options": "nosniff",
               "Access-Control-Allow-Origin": "*"}  # fmt: skip
    if answer.not_modified:
        return Response(status_code=304, headers=headers)
    if fmt == "csv":
        headers["Content-Disposition"] = 'inline; filename="exposure-sites.csv"'
    return Response(answer.body, media_type=answer.media_type, headers=headers)


DayQuery = Annotated[str | None, Query(max_length=10, description="Sites overlapping this local day (YYYY-MM-DD)")]
IfNoneMatch = Annotated[str | None, Header(include_in_schema=False)]


@public_router.get("/public/exposure-sites.json")
def public_json(request: Request, svc: Service, commune: Commune = None, date: DayQuery = None,
                lang: Literal["vi", "en"] = "vi", if_none_match: IfNoneMatch = None) -> Response:  # fmt: skip
    """The active exposure sites (venue, commune, category, from, to, advice; never a person), without a
    token. Rate-limited per client address; cached for a minute, with an ETag."""
    return _public(request, svc, "json", commune, date, lang, if_none_match)


@public_router.get("/public/exposure-sites.csv", response_class=Response,
                   responses={200: {"content": {"text/csv": {}}}})  # fmt: skip
def public_csv(request: Request, svc: Service, commune: Commune = None, date: DayQuery = None,
               lang: Literal["vi", "en"] = "vi", if_none_match: IfNoneMatch = None) -> Response:  # fmt: skip
    """The same list as CSV (header in the language asked)."""
    return _public(request, svc, "csv", commune, date, lang, if_none_match)


@public_router.get("/public/", include_in_schema=False)
def public_page() -> FileResponse:
    return FileResponse(str(PUBLIC.joinpath("index.html")), headers={"Cache-Control": "no-cache"})


@public_router.get("/public", include_in_schema=False)
def public_root() -> RedirectResponse:
    return RedirectResponse("/public/")
