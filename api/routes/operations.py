"""Operators: pipeline health from the store and the workers' metrics; the audit log for admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from qrtrace.api.app import Caller, Service
from qrtrace.api.models import to_us

router = APIRouter(tags=["operations"])


@router.get("/operations")
def operations(who: Caller, svc: Service) -> dict:
    """Events/s per stage and consumer lag (from the workers' metrics; `not_running` in embedded mode),
    check-ins stored per minute, dead letters by reason, store size per table."""
    return svc.operations(who)


@router.get("/audit", tags=["access"])
def audit(
    who: Caller, svc: Service,
    since: Annotated[datetime | None, Query(description="Entries after this time (default: all)")] = None,
    action: Annotated[str, Query(max_length=64)] = "",
    case_id: Annotated[str, Query(max_length=64)] = "",
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> list[dict]:  # fmt: skip
    """The audit log, newest first (admins only). There is no route that changes or deletes it."""
    since_us = to_us(since, "since") if since else 0
    return svc.audit_log(who, since_us, action, case_id, limit)
