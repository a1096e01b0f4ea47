"""Notifications on a finished trace: queue and send one message per contact, read their statuses."""

from __future__ import annotations

from fastapi import APIRouter

from qrtrace.api.app import Caller, Service
from qrtrace.api.models import NotifyIn

router = APIRouter(tags=["notifications"])


@router.post("/traces/{trace_id}/notifications", status_code=202)
def notify_trace(trace_id: str, body: NotifyIn, who: Caller, svc: Service) -> dict:
    """Queue one message per contact of the tier (Vietnamese: where, when, what to do, whom to call) and send
    them in the background through the server's gateway (QRTRACE_NOTIFY_GATEWAY; never chosen by the caller).
    Opening the phone numbers is re-identification: for roles allowed to re-identify, audited with the purpose."""
    return svc.notify_trace(who, trace_id, body.tier, body.purpose)


@router.get("/traces/{trace_id}/notifications")
def notification_statuses(trace_id: str, who: Caller, svc: Service) -> dict:
    """Counts by status (queued, sent, failed) and each message's status, reason and attempts."""
    return svc.notification_statuses(who, trace_id)
