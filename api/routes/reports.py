"""Reports for authorities: coverage per commune x category, the daily trend, and the export sent upward."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from qrtrace.api.app import Caller, Service, attachment
from qrtrace.api.models import to_us
from qrtrace.api.routes.cases import XLSX

router = APIRouter(prefix="/reports", tags=["reports"])
Commune = Annotated[str | None, Query(max_length=16, description="One commune's code (default: your area)")]
AsOf = Annotated[datetime | None, Query(description="End of the period, ISO 8601 with offset (default: now)")]


def _as_of(value: datetime | None) -> int | None:
    return None if value is None else to_us(value, "as_of")


@router.get("/coverage")
def coverage(
    who: Caller, svc: Service, commune: Commune = None, as_of: AsOf = None, lang: Literal["vi", "en"] | None = None
) -> dict:
    """Registered, active (24 h / 7 days), scans and people per commune x category in the caller's area,
    with totals per commune and per overseeing office, zero-scan communes and silent venues."""
    return svc.coverage(who, commune, _as_of(as_of), lang)


@router.get("/trend")
def trend(
    who: Caller, svc: Service, commune: Commune = None, as_of: AsOf = None,
    days: Annotated[int, Query(ge=1, le=60)] = 14,
) -> list[dict]:  # fmt: skip
    """Active venues and scans per day in the caller's area."""
    return svc.trend(who, commune, days, _as_of(as_of))


@router.get("/coverage/export", response_class=Response,
            responses={200: {"content": {"text/csv": {}, XLSX: {}}}})  # fmt: skip
def coverage_export(
    who: Caller, svc: Service, commune: Commune = None, as_of: AsOf = None,
    format: Literal["csv", "xlsx"] = "xlsx", lang: Literal["vi", "en"] = "vi",
    purpose: Annotated[str, Query(min_length=3, max_length=300, pattern=r"\S")] = "báo cáo định kỳ",
) -> Response:  # fmt: skip
    """The coverage report in the layout a district office sends to the province (audited)."""
    data = svc.coverage_export(who, commune, _as_of(as_of), format, lang, purpose)
    media = "text/csv; charset=utf-8" if format == "csv" else XLSX
    return Response(data, media_type=media,
                    headers={"Content-Disposition": attachment(f"coverage.{format}")})  # fmt: skip


@router.get("/hotspots")
def hotspots(
    who: Caller, svc: Service, commune: Commune = None, as_of: AsOf = None,
    days: Annotated[int, Query(ge=1, le=60)] = 7, limit: Annotated[int, Query(ge=1, le=200)] = 20,
    lang: Literal["vi", "en"] | None = None,
) -> dict:  # fmt: skip
    """Crowding hotspots in the caller's area: venues by occupancy windows over capacity and peak, busiest
    hours per venue category (local time), per commune."""
    return svc.hotspots(who, commune, days, _as_of(as_of), limit, lang)
