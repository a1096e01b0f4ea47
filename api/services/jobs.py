"""Trace jobs as the service tracks them while they run on its background thread."""

from __future__ import annotations

from dataclasses import dataclass

MAX_TRACE_JOBS_KEPT = 200


@dataclass
class TraceJob:
    """One trace run: who started it for which cases, and how far it has got."""

    trace_id: str
    actor: str
    case_ids: list[str]
    depth: int
    purpose: str
    started_at_us: int
    hops_done: int = 0
    status: str = "running"  # running | done | failed
    error: str | None = None
    contacts: int = 0
