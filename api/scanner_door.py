"""The scanners' front door: `POST /api/checkins`, answered without a thread per request.

    POST /api/checkins   Authorization: Bearer qrt_...   (a scanner token of `qrtrace tokens issue`)
                         body: a JSON array of check-ins (application/json), or JSON lines
                         (application/x-ndjson), at most 5,000
    GET  /metrics        Prometheus text (the front door's own metrics and the process's)

Scanners are the busiest callers by far (a phone sends one scan per request), so this route is an ASGI
layer in front of the FastAPI application rather than one of its routes: FastAPI's per-request machinery
(dependency resolution, a worker thread that blocks while the pass is stored, the console middleware) cost
more than the work itself. Everything else still goes to FastAPI, which also documents this route
(`routes/checkins.py`, the same service calls, blocking).

The answer contract (docs/design.md): 202 = kept durably (embedded: stored; distributed: acknowledged by
Kafka), with the request's own counts; 503 + Retry-After = nothing kept, the same request may be sent
again (scan_id makes it idempotent); any other 4xx = the request as a whole is unusable, nothing kept:
401/429 (token), 403 (role or another venue), 413 (too large), 422 (not JSON or a record of the wrong
shape, naming it), 400 (a forged venue QR). Values that are wrong (a direction, a time, an unknown venue)
are not errors of the request: those check-ins are dead letters, counted in the answer.

The request's own work (token check against the cache, JSON parsing and the shape check) runs on the
event loop; a token seen for the first time (a ~50 ms scrypt run) and large bodies run on threads so the
loop keeps answering. The check-ins then wait, as a future, for a pass of the process's `ScannerFront`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from pydantic import TypeAdapter, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from qrtrace.access import AccessDenied, InvalidToken, Principal, TooManyAttempts
from qrtrace.api.app import MAX_BODY_BYTES, errors_sentence
from qrtrace.api.models import MAX_CHECKINS, CheckinIn
from qrtrace.api.service import ApiService, Unavailable
from qrtrace.errors import QrtraceError
from qrtrace.metrics import FRONT_REQUESTS, FRONT_SCANS, FRONT_SECONDS, FRONT_UNAVAILABLE
from qrtrace.producers.front import TIMEOUT, TOKEN_FILE, FrontUnavailable

if TYPE_CHECKING:
    from qrtrace.producers.coalesce import Share

log = logging.getLogger("qrtrace.api")

ROUTE = "/api/checkins"
METRICS = "/metrics"
NDJSON_TYPES = (b"application/x-ndjson", b"application/jsonl", b"application/x-jsonlines", b"application/json-seq")
THREAD_BODY_BYTES = 32_768  # larger bodies (~150 check-ins) are checked on a thread: 5,000 take ~50 ms
# What the JSON encoder and decoder of the ingest path (orjson) hold exactly: a whole number outside this
# range would fail the encoder (a 500) or turn into an approximate float on the file path.
INT_RANGE = (-(2**63), 2**64 - 1)
CHECKINS = TypeAdapter(list[CheckinIn])
ONE_CHECKIN = TypeAdapter(CheckinIn)


class Refused(Exception):
    """The request as a whole is unusable (or cannot be kept now): its status, sentence and headers."""

    def __init__(self, status: int, sentence: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(sentence)
        self.status, self.headers = status, headers or {}


class ScannerDoor:
    """ASGI middleware answering `POST /api/checkins` (and `GET /metrics`); everything else goes on to `app`."""

    def __init__(self, app: ASGIApp, service: ApiService) -> None:
        self.app = app
        self.svc = service
        # scrypt runs for tokens seen the first time: a few threads, so a burst of new scanners (a server
        # restart) is verified in parallel by OpenSSL while the loop goes on answering the known ones.
        self._auth_threads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="qrtrace-auth")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path, method = scope["path"], scope["method"]
            if path == ROUTE and method == "POST":
                await self._checkins(scope, receive, send)
                return
            if path == METRICS and method == "GET":
                await _respond(send, 200, self._metrics(), {"content-type": CONTENT_TYPE_LATEST})
                return
        await self.app(scope, receive, send)

    # -- POST /api/checkins ---------------------------------------------------------------------------------
    async def _checkins(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        try:
            share = await self._keep(scope, receive)
        except Refused as exc:
            await _respond(send, exc.status, orjson.dumps({"error": str(exc)}), exc.headers)
            _count(exc.status, started)
            return
        except Exception:  # a fault of ours: logged, answered with a sentence, never a traceback
            log.exception("the scanner door failed on a request")
            await _respond(send, 500, orjson.dumps({"error": "The server failed on this request; it was logged."}))
            _count(500, started)
            return
        await _respond(send, 202, orjson.dumps(self.svc.checkin_answer(share)))
        _count(202, started)
        if share is not None:
            self.svc.count_ingest(share, time.perf_counter() - started)
            FRONT_SCANS.labels("accepted").inc(len(share.checkins))
            if share.dead_letters:
                FRONT_SCANS.labels("dead_lettered").inc(len(share.dead_letters))

    async def _keep(self, scope: Scope, receive: Receive) -> Share | None:
        """The request's share of a kept pass (None for an empty batch), or Refused with the answer."""
        headers = dict(scope["headers"])
        who = await self._caller(headers.get(b"authorization"), scope)
        try:
            self.svc.check_ingest_role(who)  # the role first: a refused caller learns nothing about the body
        except AccessDenied as exc:
            raise Refused(403, str(exc)) from None
        body = await _body(headers, receive)
        ndjson = headers.get(b"content-type", b"").split(b";")[0].strip().lower() in NDJSON_TYPES
        if len(body) <= THREAD_BODY_BYTES:
            lines, venue_ids = self._lines(who, body, ndjson)
        else:
            lines, venue_ids = await asyncio.to_thread(self._lines, who, body, ndjson)
        if not lines:
            return None
        front = self.svc.front
        future: asyncio.Future[Share] = asyncio.get_running_loop().create_future()
        try:
            front.submit(lines, venue_ids, "api", future)  # settled on this loop, one wake-up per pass
        except FrontUnavailable as exc:
            raise _unavailable(exc) from None
        try:
            return await asyncio.wait_for(future, front.answer_timeout_s)
        except FrontUnavailable as exc:
            raise _unavailable(exc) from None
        except QrtraceError as exc:  # a sentence about the request itself (e.g. no venues registered)
            raise Refused(400, str(exc)) from None
        except TimeoutError:
            front.withdraw(future)
            raise _unavailable(FrontUnavailable(f"The batch was not confirmed within {front.answer_timeout_s:g} s; "
                                                "send it again.", TIMEOUT)) from None  # fmt: skip

    async def _caller(self, header: bytes | None, scope: Scope) -> Principal:
        text = header.decode("latin-1") if header is not None else None
        try:
            who = self.svc.cached_caller(text)
            if who is None:  # first sight of this token: scrypt, off the loop
                client = (scope.get("client") or ("",))[0]
                loop = asyncio.get_running_loop()
                who = await loop.run_in_executor(self._auth_threads, self.svc.authenticate, text, client)
            return who
        except InvalidToken as exc:
            raise Refused(401, str(exc), {"www-authenticate": "Bearer"}) from None
        except TooManyAttempts as exc:
            raise Refused(429, str(exc), {"retry-after": str(exc.retry_after_s)}) from None
        except Unavailable as exc:  # the token file is unreadable
            raise _unavailable(FrontUnavailable(str(exc), TOKEN_FILE, retry_after_s=5)) from None

    def _lines(self, who: Principal, body: bytes, ndjson: bool) -> tuple[list[bytes], set[str]]:
        """The body's check-ins as JSON lines for the front, and the venues they name; Refused otherwise."""
        records = _records(body, ndjson)
        if len(records) > MAX_CHECKINS:
            raise Refused(413, f"The batch holds {len(records):,} check-ins; send at most {MAX_CHECKINS:,} per "
                               "request.")  # fmt: skip
        check_numbers(records)
        try:
            return self.svc.checkin_lines(who, [r.model_dump() for r in records])
        except AccessDenied as exc:
            raise Refused(403, str(exc)) from None
        except QrtraceError as exc:  # a forged or mismatched venue QR
            raise Refused(400, str(exc)) from None

    # -- GET /metrics -----------------------------------------------------------------------------------------
    def _metrics(self) -> bytes:
        return generate_latest(_registry())


def _registry() -> CollectorRegistry:
    """This process's metrics, or every worker's summed (`--workers N`: prometheus_client's multiprocess mode)."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def front_door_stats() -> dict:
    """The front door's figures for the operations page: answers by status, 503s by cause, check-ins by edge
    verdict, answer-time percentiles (from the histogram's buckets: an upper bound) and the queue depth
    (all summed over `--workers N`)."""
    samples = {}
    for family in _registry().collect():
        if family.name.startswith("qrtrace_frontdoor"):
            for sample in family.samples:
                samples.setdefault(sample.name, []).append(sample)

    def by(name: str, label: str) -> dict[str, int]:
        return {s.labels[label]: int(s.value) for s in samples.get(name, [])}

    buckets = sorted(((float(s.labels["le"]), s.value) for s in samples.get("qrtrace_frontdoor_answer_seconds_bucket",
                                                                           [])), key=lambda b: b[0])  # fmt: skip
    total = buckets[-1][1] if buckets else 0

    def percentile(q: float) -> float | None:
        for le, count in buckets:
            if total and count >= q * total:
                return None if le == float("inf") else le * 1000
        return None

    return {"requests": by("qrtrace_frontdoor_requests_total", "status"),
            "unavailable": by("qrtrace_frontdoor_unavailable_total", "cause"),
            "scans": by("qrtrace_frontdoor_scans_total", "verdict"),
            "answer_ms_p50": percentile(0.5), "answer_ms_p99": percentile(0.99),
            "queued_checkins": int(sum(s.value for s in samples.get("qrtrace_frontdoor_queued_checkins", [])))}


def _records(body: bytes, ndjson: bool) -> list[CheckinIn]:
    """Parse and shape-check the body (strict: a wrong type is a 422 naming the record and field)."""
    try:
        if not ndjson:
            return CHECKINS.validate_json(body)
        records = []
        for n, line in enumerate(body.splitlines()):
            if line.strip():
                try:
                    records.append(ONE_CHECKIN.validate_json(line))
                except ValidationError as exc:
                    errors = [{**e, "loc": (n, *e["loc"])} for e in exc.errors()]
                    raise Refused(422, _line_sentence(errors, n)) from None
        return records
    except ValidationError as exc:
        errors = exc.errors()
        if errors and errors[0]["type"] == "list_type" and not errors[0]["loc"]:
            raise Refused(422, "The body must be a list of check-ins: a JSON array (or JSON lines, with Content-Type "
                               "application/x-ndjson).") from None  # fmt: skip
        raise Refused(422, errors_sentence(errors)) from None


def _line_sentence(errors: list, line: int) -> str:
    if errors and errors[0].get("type") == "json_invalid":
        return f"Line {line + 1} of the body is not valid JSON; nothing from this batch was stored."
    return f"Line {line + 1}: {errors_sentence(errors)}"


def check_numbers(records: list[CheckinIn]) -> None:
    """Refused (422) naming the first declaration value that is a whole number beyond 64 bits."""
    for i, checkin in enumerate(records):
        for key, value in (checkin.declaration or {}).items():
            if isinstance(value, int) and not INT_RANGE[0] <= value <= INT_RANGE[1]:
                raise Refused(422, f"[{i}].declaration.{key}: a whole number beyond 64 bits cannot be stored; send "
                                   "it as text (nothing from this batch was stored).")  # fmt: skip


async def _body(headers: dict[bytes, bytes], receive: Receive) -> bytes:
    """The request body, at most MAX_BODY_BYTES (413 past it, whether or not Content-Length was sent)."""
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    message = await receive()
    body = message.get("body", b"")
    if len(body) > MAX_BODY_BYTES:
        raise _too_large()
    if not message.get("more_body", False):
        return body  # the usual case: one message
    chunks = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Refused(400, "The client went away before the body was read.")
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_BODY_BYTES:
            raise _too_large()
    return b"".join(chunks)


def _too_large() -> Refused:
    return Refused(413, f"The body is too large (over {MAX_BODY_BYTES // (1024 * 1024)} MB); send smaller batches.")


def _unavailable(exc: FrontUnavailable) -> Refused:
    FRONT_UNAVAILABLE.labels(exc.cause).inc()
    return Refused(503, str(exc), {"retry-after": str(exc.retry_after_s)})


def _count(status: int, started: float) -> None:
    FRONT_REQUESTS.labels(str(status)).inc()
    FRONT_SECONDS.observe(time.perf_counter() - started)


async def _respond(send: Send, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    for name, value in (headers or {}).items():
        if name == "content-type":
            raw[0] = (b"content-type", value.encode())
        else:
            raw.append((name.encode(), value.encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
