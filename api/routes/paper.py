"""Paper logs: a venue's template (XLSX) and the upload of a filled one (the body is the XLSX file)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from qrtrace.api.app import Caller, Service, attachment

router = APIRouter(tags=["venues"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Lang = Annotated[Literal["vi", "en"], Query(description="Labels of the sheet and the report")]


@router.get("/venues/{venue_id}/paper-log/template.xlsx", response_class=Response,
            responses={200: {"content": {XLSX: {}}}})  # fmt: skip
def paper_template(venue_id: str, who: Caller, svc: Service, lang: Lang = "vi",
                   day: Annotated[date | None, Query(alias="date", description="The day of the log")] = None,
                   ) -> Response:  # fmt: skip
    """The blank paper log of a venue (its id, name and zones at the top) for people without phones."""
    data = svc.paper_template(who, venue_id, day, lang)
    return Response(data, media_type=XLSX, headers={"Content-Disposition": attachment(f"paper-log-{venue_id}.xlsx")})


# Documented as octet-stream (any Content-Type is read as the file's bytes): schema tools can send it.
BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post("/venues/{venue_id}/paper-log", openapi_extra=BODY)
async def paper_import(venue_id: str, request: Request, who: Caller, svc: Service, lang: Lang = "vi") -> dict:
    """Store a filled paper log (the XLSX file as the body, at most 2 MB: 413 past it) as manual check-ins
    and answer the report: counts and every refused row with its row, column, header and reason. Refused rows
    are kept as dead letters; importing the same sheet again stores nothing twice."""
    from starlette.concurrency import run_in_threadpool

    data = await request.body()
    return await run_in_threadpool(svc.import_paper_log, who, venue_id, data, lang)
