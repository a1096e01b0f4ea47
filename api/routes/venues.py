"""Venues: register, list, and issue the signed QR (PNG, SVG) and the A4 poster (PDF)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from qrtrace.access import PERMISSIONS
from qrtrace.api.app import Caller, Service, attachment
from qrtrace.api.models import VenueIn, ZoneIn
from qrtrace.domain.categories import load_categories
from qrtrace.domain.venues import Venue

router = APIRouter(tags=["venues"])
Lang = Annotated[Literal["vi", "en"], Query(description="Poster language")]
ZoneQuery = Annotated[str, Query(max_length=64, description="One of the venue's zones: that zone's own QR")]


@router.get("/me", tags=["access"])
def me(who: Caller) -> dict:
    """Who the token stands for, its area and what it may do (the console shows pages accordingly)."""
    return {
        "name": who.name, "role": str(who.role), "venues": sorted(who.venues), "commune_code": who.commune_code,
        "district_code": who.district_code, "permissions": sorted(str(a) for a in PERMISSIONS[who.role]),
    }  # fmt: skip


@router.get("/communes")
def communes(who: Caller, svc: Service) -> list[dict]:
    """The communes in the caller's area."""
    return svc.communes(who)


@router.get("/categories")
def categories(who: Caller) -> list[dict]:
    """The 21 venue categories of the 2021 directive, with their overseeing office."""
    del who  # any signed-in role may read the reference list
    return [{"code": c.code, "name_vi": c.name_vi, "name_en": c.name_en, "office": c.overseeing_office}
            for c in load_categories().values()]  # fmt: skip


@router.get("/venues")
def list_venues(
    who: Caller,
    svc: Service,
    commune: Annotated[str | None, Query(max_length=16)] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
) -> list[dict]:
    """Venues in the caller's area, optionally one commune's or one category's."""
    return svc.list_venues(who, commune, category)


@router.post("/venues", status_code=201)
def register_venue(body: VenueIn, who: Caller, svc: Service) -> dict:
    """Register a venue in a commune of the caller's area (409 if the id is taken)."""
    return svc.register_venue(who, Venue(body.venue_id, body.name.strip(), body.category, body.commune_code,
                                         body.capacity), establishment_id=body.establishment_id)  # fmt: skip


@router.post("/venues/{venue_id}/zones", status_code=201)
def add_zone(venue_id: str, body: ZoneIn, who: Caller, svc: Service) -> dict:
    """Add a zone to a venue of the caller's area (each zone gets its own QR and poster: ?zone=...)."""
    return svc.add_zone(who, venue_id, body.zone)


@router.get("/venues/{venue_id}/qr.png", response_class=Response, responses={200: {"content": {"image/png": {}}}})
def venue_qr_png(venue_id: str, who: Caller, svc: Service, zone: ZoneQuery = "") -> Response:
    """The signed venue QR as PNG (with `zone`: that zone's QR)."""
    return Response(svc.venue_qr(who, venue_id, "png", "vi", zone), media_type="image/png")


@router.get("/venues/{venue_id}/qr.svg", response_class=Response, responses={200: {"content": {"image/svg+xml": {}}}})
def venue_qr_svg(venue_id: str, who: Caller, svc: Service, zone: ZoneQuery = "") -> Response:
    """The signed venue QR as SVG (with `zone`: that zone's QR)."""
    return Response(svc.venue_qr(who, venue_id, "svg", "vi", zone), media_type="image/svg+xml")


@router.get("/venues/{venue_id}/poster.pdf", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}}})  # fmt: skip
def venue_poster(venue_id: str, who: Caller, svc: Service, lang: Lang = "vi", zone: ZoneQuery = "") -> Response:
    """The printable A4 poster with the venue's name, category and commune around its signed QR (with
    `zone`: that zone's poster)."""
    return Response(svc.venue_qr(who, venue_id, "pdf", lang, zone), media_type="application/pdf",
                    headers={"Content-Disposition": attachment(f"poster-{venue_id}.pdf")})  # fmt: skip
