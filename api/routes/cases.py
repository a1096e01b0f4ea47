"""Cases and traces: declare a positive case, run a trace (one case or many), read it, export the call list."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse

from qrtrace.api.app import Caller, Service, attachment
from qrtrace.api.models import Accepted, CaseIn, TraceIn, to_us
from qrtrace.errors import InputError
from qrtrace.queries.risk import RiskRule, load_rule, shipped_rules
from qrtrace.queries.trace import TraceRules
from qrtrace.sinks.audit import now_us

router = APIRouter(tags=["cases and traces"])
US_PER_MINUTE = 60_000_000
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Purpose = Annotated[str, Query(min_length=3, max_length=300, pattern=r"^\s*\S.{1,}\S\s*$",
                               description="Why (written to the audit log)")]


@router.post("/cases", status_code=201)
def declare_case(body: CaseIn, who: Caller, svc: Service) -> dict:
    """Declare a positive case (F0) with its infectious window; only its pseudonym is stored."""
    return svc.declare_case(who, body.case_id, body.person_id, to_us(body.infectious_from, "infectious_from"),
                            to_us(body.infectious_to, "infectious_to"))  # fmt: skip


@router.get("/cases")
def list_cases(who: Caller, svc: Service, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict]:
    """Declared cases, newest first."""
    return svc.list_cases(who, limit)


@router.post("/traces", status_code=202, response_model=Accepted)
def start_trace(body: TraceIn, who: Caller, svc: Service) -> Accepted:
    """Start a trace of declared cases (one or a batch); poll GET /api/traces/{trace_id} for progress."""
    rules = TraceRules(
        depth=body.depth,
        grace_us=round(body.grace_minutes * US_PER_MINUTE),
        min_overlap_us=round(body.min_overlap_minutes * US_PER_MINUTE),
        until_us=to_us(body.until, "until") if body.until else now_us(),
        risk=shipped_rule(body.rule),
        sources=body.sources,
    )
    job = svc.start_trace(who, body.case_ids, rules, body.purpose)
    return Accepted(trace_id=job.trace_id, status=job.status, hops_done=job.hops_done, depth=job.depth)


@router.get("/rules")
def list_rules(who: Caller, svc: Service) -> list[dict]:
    """The risk rule sets a trace can use (name, version, kind, thresholds, description)."""
    return svc.rule_sets(who)


def shipped_rule(name: str) -> RiskRule:
    """A shipped rule set by name: the API never reads a file a caller names (400 for an unknown name)."""
    if name not in shipped_rules():
        raise InputError(f"There is no rule set {name!r}; the rule sets are {', '.join(shipped_rules())}.")
    return load_rule(name)


@router.get("/traces")
def list_traces(who: Caller, svc: Service, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict]:
    """Traces running and finished, newest first (without their results)."""
    return svc.list_traces(who, limit)


@router.get("/traces/{trace_id}")
def trace_status(trace_id: str, who: Caller, svc: Service) -> dict:
    """Progress of a trace (hops done of depth), or `done`."""
    return svc.trace_status(who, trace_id)


@router.get("/traces/{trace_id}/result")
def trace_result(
    trace_id: str, who: Caller, svc: Service,
    purpose: Purpose,
    case_id: Annotated[str | None, Query(max_length=200, description="Only this case of the run")] = None,
) -> dict:  # fmt: skip
    """The cohort per case with the evidence of every contact. Epidemiologists see identifiers and phone
    numbers (re-identification, audited with the purpose stated here); other roles see pseudonyms. A
    result above QRTRACE_TRACE_RESULT_MAX_ROWS exposures is a 413: read it per case or as the call list."""
    return svc.trace_result(who, trace_id, purpose, case_id)


@router.get("/traces/{trace_id}/call-list", response_class=Response,
            responses={200: {"content": {"text/csv": {}, XLSX: {}}}})
def call_list(
    trace_id: str, who: Caller, svc: Service, purpose: Purpose,
    format: Literal["csv", "xlsx"] = "csv", lang: Literal["vi", "en"] = "vi",
) -> Response:  # fmt: skip
    """The call list (one row per exposure) as CSV or XLSX, streamed; audited with the purpose. XLSX starts a
    new sheet before Excel's row limit and is refused (413) above QRTRACE_XLSX_MAX_ROWS rows: use CSV."""
    pieces = svc.call_list(who, trace_id, format, purpose, lang)
    media = "text/csv; charset=utf-8" if format == "csv" else XLSX
    disposition = attachment(f"call-list-{trace_id}.{format}")
    return StreamingResponse(pieces, media_type=media, headers={"Content-Disposition": disposition})
