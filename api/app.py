"""The FastAPI application: routes under /api, the console at /, OpenAPI at /docs.

Every error is JSON `{"error": "<one sentence>"}` with a 4xx status (a 5xx only for a fault of ours,
never with a traceback). Every /api route needs a bearer token; /healthz, /docs and the console's own
files do not (the console asks for a token before it calls the API), nor does /public: the exposure sites
list and its page, for anyone (no person in it; rate-limited and cached, api/services/exposure_sites.py).
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qrtrace.access import AccessDenied, InvalidToken, Principal, TooManyAttempts
from qrtrace.api.service import ApiService, Conflict, NotFound, TooLarge, Unavailable
from qrtrace.errors import QrtraceError, StoreError

log = logging.getLogger("qrtrace.api")
MAX_BODY_BYTES = 4 * 1024 * 1024
CONSOLE = resources.files("qrtrace.api").joinpath("console")
# The console is its own files only: no inline script, nothing from elsewhere (downloads are blob: URLs).
CONSOLE_POLICY = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; frame-ancestors 'none'"
# /docs is Swagger UI 5 (it reads OpenAPI 3.1) from the fastapi-offline package's files (no CDN), started by the
# console's docs.js: the console's rules, except that Swagger UI sets style attributes on its elements.
DOCS_POLICY = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>qrtrace API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"><link rel="icon" href="/docs/assets/favicon.png">
</head><body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script><script src="/console/docs.js"></script>
</body></html>
"""
# Answers that hold identifiers or pseudonyms of people (cohorts, call lists, cases, the audit log) are
# never kept by a browser or a proxy.
NO_STORE_PATHS = ("/api/traces", "/api/cases", "/api/audit", "/api/exposure-sites", "/api/follow-ups")
PUBLIC = resources.files("qrtrace.api").joinpath("public")
# The public exposure-site page: its own files only, like the console; it reads nothing but /public.
PUBLIC_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; base-uri 'none'; form-action 'self'; "
                 "frame-ancestors 'none'")

bearer = HTTPBearer(auto_error=False, description="An API token: `qrt_<id>_<secret>` (qrtrace tokens issue)")


def service(request: Request) -> ApiService:
    return request.app.state.service


def caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    """The authenticated caller; 401 with the reason otherwise."""
    header = f"Bearer {credentials.credentials}" if credentials else None
    return service(request).authenticate(header, request.client.host if request.client else "")


Caller = Annotated[Principal, Depends(caller)]
Service = Annotated[ApiService, Depends(service)]


def attachment(filename: str) -> str:
    """A Content-Disposition value that cannot be broken out of (RFC 6266): an ASCII fallback name with
    anything but letters, digits, '.', '_' and '-' replaced, plus the exact name in RFC 5987 encoding.
    Ids in older stores were not always checked, so names built from them are never trusted."""
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _validation_sentence(exc: RequestValidationError) -> str:
    return errors_sentence(list(exc.errors()))


def errors_sentence(errors: list) -> str:
    """One sentence for a list of pydantic errors: the first one's place and message, and how many more."""
    if not errors:
        return "The request is not valid."
    first = errors[0]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first.get("loc", ()) if p != "body")
    where = where.lstrip(".") or "body"
    if first.get("type") == "json_invalid":
        return "The body is not valid JSON."
    more = f" ({len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid value')}.{more}"


class BodyLimit:
    """413 for bodies over the limit, whether or not the client sent Content-Length: the body is read
    (at most `limit` bytes) before the application sees it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = _error(413, f"The body is too large (over {self.limit // (1024 * 1024)} MB); send smaller batches.")
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await too_large(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away; nothing to answer
            body += message.get("body", b"")
            if len(body) > self.limit:
                await too_large(scope, receive, send)
                return
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


# Our exceptions carry a sentence for the caller; this says which status goes with which.
SENTENCE_STATUS: dict[type[Exception], int] = {
    InvalidToken: 401, AccessDenied: 403, NotFound: 404, Conflict: 409, TooLarge: 413, Unavailable: 503,
    QrtraceError: 400,  # InputError and the other user-facing errors of the core
}


def _sentence_handler(status: int):  # type: ignore[no-untyped-def]
    async def handle(_: Request, exc: Exception) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if status == 503:  # nothing was kept: the client may send the same request again after this
            headers = {"Retry-After": "2"}
        return _error(status, str(exc), headers)

    return handle


def create_app(svc: ApiService, scanners_only: bool = False) -> FastAPI:
    """The application over one service (which owns the store); `scanners_only` (`qrtrace ingest-server`):
    the scanner door, /healthz and /metrics, nothing else (no console, no other route)."""
    from qrtrace.api.routes import (
        cases,
        census,
        checkins,
        exposure_sites,
        follow_up,
        notifications,
        operations,
        reports,
        venues,
    )
    from qrtrace.api.routes import paper as paper_routes

    app = FastAPI(
        title="qrtrace API",
        version="1.0",
        docs_url=None,  # served below from the package's files, not from a CDN
        redoc_url=None,
        description="QR check-in, contact tracing (F0 -> F1 -> F2) and coverage reports. "
        "Every route needs `Authorization: Bearer qrt_...`; roles and scopes decide what it returns.",
    )
    app.state.service = svc
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)

    @app.middleware("http")
    async def console_policy(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        path = request.url.path
        if path == "/" or path.startswith("/console"):
            response.headers["Content-Security-Policy"] = CONSOLE_POLICY
            response.headers["X-Content-Type-Options"] = "nosniff"
        elif path == "/public" or path.startswith("/public/"):
            response.headers["Content-Security-Policy"] = PUBLIC_POLICY
            response.headers["X-Content-Type-Options"] = "nosniff"
        elif path == "/docs" or path.startswith("/docs/"):
            response.headers["Content-Security-Policy"] = DOCS_POLICY
            response.headers["X-Content-Type-Options"] = "nosniff"
        if path.startswith(NO_STORE_PATHS):  # errors too: a 4xx may name a case or trace
            response.headers["Cache-Control"] = "no-store"
        return response

    for exc_type, status in SENTENCE_STATUS.items():
        app.add_exception_handler(exc_type, _sentence_handler(status))

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, exc: StoreError) -> JSONResponse:
        # The database's own text is for the operator's log, never for the caller (issue 10, item 3).
        log.warning("store error on %s %s: %s", request.method, request.url.path, exc)
        return _error(503, "The store could not complete this request; try again in a moment.", {"Retry-After": "5"})

    from qrtrace.api.scanner_door import Refused
    from qrtrace.producers.front import FrontUnavailable

    @app.exception_handler(FrontUnavailable)
    async def _not_kept(_: Request, exc: FrontUnavailable) -> JSONResponse:
        return _error(503, str(exc), {"Retry-After": str(exc.retry_after_s)})

    @app.exception_handler(Refused)
    async def _refused(_: Request, exc: Refused) -> JSONResponse:
        return _error(exc.status, str(exc), exc.headers)

    @app.exception_handler(TooManyAttempts)
    async def _429(_: Request, exc: TooManyAttempts) -> JSONResponse:
        return _error(429, str(exc), {"Retry-After": str(exc.retry_after_s)})

    @app.exception_handler(RequestValidationError)
    async def _422(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_sentence(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        sentences = {404: f"There is no page or API route {request.url.path}.",
                     405: f"{request.method} is not allowed on {request.url.path}."}  # fmt: skip
        fallback = str(exc.detail or "The request cannot be served.")
        return _error(exc.status_code, sentences.get(exc.status_code, fallback))

    @app.exception_handler(Exception)
    async def _500(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return _error(500, f"The server failed on this request ({type(exc).__name__}); it was logged.")

    for module in (checkins,) if scanners_only else (venues, checkins, cases, reports, operations,
                                                     exposure_sites, notifications, paper_routes, census,
                                                     follow_up):
        app.include_router(module.router, prefix="/api")

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict:
        return {"status": "ok"}

    from qrtrace.api.scanner_door import ScannerDoor

    app.add_middleware(ScannerDoor, service=svc)  # outermost: scanners' requests skip the rest (see its module)
    if scanners_only:
        return app

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(str(CONSOLE.joinpath("index.html")))

    @app.get("/console", include_in_schema=False)
    def console_root() -> RedirectResponse:
        return RedirectResponse("/")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(DOCS_PAGE)

    swagger = resources.files("fastapi_offline").joinpath("static")  # only its files: the page above is ours
    app.mount("/docs/assets", StaticFiles(directory=str(swagger)), name="docs-assets")
    app.mount("/console", StaticFiles(directory=str(CONSOLE)), name="console")
    app.include_router(exposure_sites.public_router)  # before its files' mount: the data routes win
    app.mount("/public", StaticFiles(directory=str(PUBLIC)), name="public")
    return app
