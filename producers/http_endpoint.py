"""The scanners' HTTP endpoint: authenticated batches of check-ins in, through the edge, onto Kafka.

    POST /v1/checkins   Authorization: Bearer <token>
                        body: a JSON array of check-in objects (Content-Type application/json)
                              or JSON lines (Content-Type application/x-ndjson)
    GET  /healthz       {"status": "ok"}
    GET  /metrics       Prometheus text exposition

What a scanner can rely on:
- 202 {"received", "accepted", "dead_lettered", "reasons"} is sent only after Kafka acknowledged every
  message of that request (check-ins, dead letters, new identities). `accepted` counts valid records
  handed to the pipeline, retries included: dropping repeated scan_ids happens downstream.
  Individually bad records are not an error: they are dead-lettered (with the reason) and counted.
- 503 with Retry-After: nothing is confirmed. Send the same batch again; the pipeline drops scan_ids it
  has already seen, so a retry never stores a check-in twice.
- Any other 4xx: the request as a whole cannot be used and nothing of it was kept; resending it
  unchanged gets the same answer.
- Every error body is {"error": "<one sentence>"}, never a traceback.

Decisions:
- A token is bound to one venue (and names its scanner). One record for another venue refuses the
  whole request with 403 naming both venues: that is a misconfigured scanner, which its operator can
  fix, whereas dead-lettering just those records would bury the problem in the dead-letter store.
  A token whose venue is not registered on this server is refused the same way (403), so the records
  wait on the scanner instead of being dead-lettered as an unknown venue.
- A JSON array body that does not parse is a 400 (its records cannot be told apart); a JSON-lines body
  is parsed line by line, so a broken line is one dead-lettered record ("malformed_json").
- Tokens are kept only as SHA-256 digests. The digest of the presented token is looked up in a dict
  (timing there can leak only bits of a digest, not of a valid token) and confirmed with
  `hmac.compare_digest`, so authentication costs the same for ten scanners as for a million.
- The edge and the Kafka producer run on one dedicated thread, one request at a time (an asyncio.Lock
  queues requests, with a bounded wait), so the deliveries a flush confirms belong to that request.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import signal
from collections import Counter as Tally
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson
from aiohttp import web
from confluent_kafka import KafkaException
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

from qrtrace.errors import InputError, QrtraceError
from qrtrace.metrics import BATCH_SIZE, DELIVERY_ERRORS, EVENTS
from qrtrace.producers.edge import AdmittedBatch, Edge, receiving_edge
from qrtrace.settings import Settings
from qrtrace.sinks.audit import now_us

log = logging.getLogger(__name__)

CHECKINS_PATH = "/v1/checkins"
MAX_BATCH = 5000
MAX_BODY_BYTES = 2 * 1024 * 1024
FLUSH_TIMEOUT_S = 30.0
RETRY_AFTER_S = 5
MIN_TOKEN_LENGTH = 16
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/jsonl", "application/x-jsonlines"})

HTTP_REQUESTS = Counter(
    "qrtrace_http_requests_total", "Scanner endpoint requests by route and status", ["route", "status"]
)


class ProducerLike(Protocol):
    """What the endpoint needs of `CheckinProducer` (a fake with these three members will do in tests)."""

    report: Any  # .delivered and .failed: running counts of delivery reports

    def send(self, admitted: AdmittedBatch, source: str, received_at_us: int) -> None: ...

    def flush(self, timeout_s: float = ...) -> int: ...


# -- tokens -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scanner:
    scanner_id: str
    venue_id: str


def _loads_or_none(line: bytes) -> object:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class ScannerTokens:
    """Bearer tokens of the scanners, each bound to one venue. Only SHA-256 digests are kept."""

    def __init__(self, tokens: Mapping[str, Scanner]) -> None:
        self._by_digest: dict[bytes, tuple[bytes, Scanner]] = {}
        for token, scanner in tokens.items():
            d = _digest(token)
            self._by_digest[d] = (d, scanner)

    @classmethod
    def from_file(cls, path: str | Path) -> ScannerTokens:
        """Read {"<token>": {"scanner_id": ..., "venue_id": ...}, ...}; any bad entry refuses the file."""
        path = Path(path)
        try:
            raw = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            raise InputError(f"The scanner tokens file {path} does not exist.") from None
        except OSError as exc:
            raise InputError(f"Cannot read the scanner tokens file {path}: {exc.strerror}.") from None
        except orjson.JSONDecodeError as exc:
            raise InputError(f"The scanner tokens file {path} is not valid JSON ({exc}).") from None
        if not isinstance(raw, dict):
            raise InputError(
                f"The scanner tokens file {path} must hold one JSON object: "
                '{"<token>": {"scanner_id": "...", "venue_id": "..."}, ...}.'
            )
        if not raw:
            raise InputError(f"The scanner tokens file {path} holds no tokens.")
        tokens: dict[str, Scanner] = {}
        for n, (token, entry) in enumerate(raw.items(), start=1):
            where = f"{path}, entry {n}"  # never the token itself: it is a secret
            if not isinstance(entry, dict) or not all(
                isinstance(entry.get(k), str) and entry[k].strip() for k in ("scanner_id", "venue_id")
            ):
                raise InputError(f"{where}: each token needs a non-empty scanner_id and venue_id.")
            if len(token) < MIN_TOKEN_LENGTH or token != token.strip():
                raise InputError(
                    f"{where} (scanner {entry['scanner_id']}): a token must be at least {MIN_TOKEN_LENGTH} "
                    "characters without surrounding spaces; generate one with `python -c "
                    '"import secrets; print(secrets.token_urlsafe(32))"`.'
                )
            tokens[token] = Scanner(entry["scanner_id"].strip(), entry["venue_id"].strip())
        return cls(tokens)

    def authenticate(self, authorization: str | None) -> Scanner | None:
        """The scanner an `Authorization: Bearer <token>` header belongs to, or None."""
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        presented = _digest(token)
        stored, scanner = self._by_digest.get(presented, (b"\0" * len(presented), None))
        return scanner if hmac.compare_digest(stored, presented) and scanner is not None else None

    def venues(self) -> set[str]:
        return {s.venue_id for _, s in self._by_digest.values()}

    def __len__(self) -> int:
        return len(self._by_digest)


# -- the application --------------------------------------------------------------------------------------


class Refusal(Exception):
    """An answer other than 202: status, one sentence, optional headers."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def _retry_later(message: str) -> Refusal:
    return Refusal(503, message, {"Retry-After": str(RETRY_AFTER_S)})


def json_response(doc: object, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(doc), status=status, content_type="application/json", headers=headers)


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return json_response({"error": message}, status, headers)


@dataclass
class _Ingest:
    """The state behind POST /v1/checkins. Edge and producer are touched only on `executor`'s thread."""

    settings: Settings
    edge: Edge
    producer: ProducerLike
    tokens: ScannerTokens
    max_batch: int
    max_body_bytes: int
    flush_timeout_s: float
    known_venues: frozenset[str] | None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="qrtrace-http-edge")
    )
    pending: int = 0  # messages handed to the producer and not yet acknowledged (delivered or failed)

    async def handle(self, request: web.Request) -> web.Response:
        scanner = self.tokens.authenticate(request.headers.get("Authorization"))
        if scanner is None:
            raise Refusal(
                401,
                "A valid scanner token is required: send the header Authorization: Bearer <token>.",
                {"WWW-Authenticate": 'Bearer realm="qrtrace"'},
            )
        if self.known_venues is not None and scanner.venue_id not in self.known_venues:
            raise Refusal(
                403,
                f"Venue {scanner.venue_id} of scanner {scanner.scanner_id} is not registered on "
                "this server; nothing was accepted, send the batch again once it is registered.",
            )
        body = await self._read_body(request)
        lines, records = self._records(body, request.content_type)
        EVENTS.labels("http", "received").inc(len(lines))
        try:
            self._check_venues(records, scanner)
        except Refusal:
            EVENTS.labels("http", "refused").inc(len(lines))
            raise
        if not lines:
            return json_response({"received": 0, "accepted": 0, "dead_lettered": 0, "reasons": {}}, 202)
        try:
            doc = await self._one_at_a_time(lines, scanner, now_us())
        except Refusal:
            EVENTS.labels("http", "refused").inc(len(lines))
            raise
        EVENTS.labels("http", "accepted").inc(doc["accepted"])
        EVENTS.labels("http", "dead_lettered").inc(doc["dead_lettered"])
        BATCH_SIZE.labels("http").observe(len(lines))
        return json_response(doc, 202)

    async def _read_body(self, request: web.Request) -> bytes:
        too_large = Refusal(413, f"The body is larger than {self.max_body_bytes:,} bytes; send smaller batches.")
        if request.content_length is not None and request.content_length > self.max_body_bytes:
            raise too_large
        body = bytearray()
        async for chunk in request.content.iter_any():
            body += chunk
            if len(body) > self.max_body_bytes:
                raise too_large
        return bytes(body)

    def _records(self, body: bytes, content_type: str) -> tuple[list[bytes], list[object]]:
        """The body as one JSON line per record (the form the edge takes), and each record parsed
        (None for a line that is not JSON: the edge dead-letters it)."""
        if content_type in NDJSON_TYPES:
            lines = [line for line in body.split(b"\n") if line.strip()]
            self._check_count(len(lines))
            return lines, [_loads_or_none(line) for line in lines]
        if content_type == "application/json":
            try:
                records = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise Refusal(
                    400,
                    f"The body is not valid JSON ({exc}); send a JSON array of check-ins, or JSON "
                    "lines with Content-Type application/x-ndjson.",
                ) from None
            if not isinstance(records, list):
                raise Refusal(400, "The body must be a JSON array of check-in objects.")
            self._check_count(len(records))
            return [orjson.dumps(r) for r in records], records
        raise Refusal(
            415,
            f"Content-Type {content_type} is not accepted; send application/json (an array "
            "of check-ins) or application/x-ndjson (one check-in per line).",
        )

    def _check_count(self, n: int) -> None:
        if n > self.max_batch:
            raise Refusal(413, f"The batch holds {n:,} records; at most {self.max_batch:,} are accepted per request.")

    @staticmethod
    def _check_venues(records: list[object], scanner: Scanner) -> None:
        """Refuse the request if any record names a venue other than the token's."""
        for n, record in enumerate(records, start=1):
            venue = record.get("venue_id") if isinstance(record, dict) else None
            if isinstance(venue, str) and venue != scanner.venue_id:
                raise Refusal(
                    403,
                    f"Record {n} is for venue {venue[:128]}, but this token belongs to scanner "
                    f"{scanner.scanner_id} at venue {scanner.venue_id}; the batch was refused, "
                    "send each venue's records with that venue's token.",
                )

    async def _one_at_a_time(self, lines: list[bytes], scanner: Scanner, received_at_us: int) -> dict[str, Any]:
        """Run edge + producer on the edge thread, one request at a time, with a bounded wait for the turn."""
        try:
            await asyncio.wait_for(self.lock.acquire(), self.flush_timeout_s)
        except TimeoutError:
            raise _retry_later("The server is busy with other batches; send this one again shortly.") from None
        try:
            job = asyncio.get_running_loop().run_in_executor(
                self.executor, self._admit_and_send, lines, scanner, received_at_us
            )
        except BaseException:
            self.lock.release()
            raise

        def done(fut: asyncio.Future) -> None:
            self.lock.release()  # only when the thread is really done, even if the client went away
            if not fut.cancelled():
                fut.exception()  # retrieved: a client that left must not turn into a "never retrieved" warning

        job.add_done_callback(done)
        return await asyncio.shield(job)

    def _admit_and_send(self, lines: list[bytes], scanner: Scanner, received_at_us: int) -> dict[str, Any]:
        """Blocking: validate, pseudonymise, produce, and wait (bounded) for Kafka's acknowledgements."""
        admitted = self.edge.admit(lines)
        report = self.producer.report
        delivered0, failed0 = report.delivered, report.failed
        try:
            self.producer.send(admitted, source=f"http:{scanner.scanner_id}", received_at_us=received_at_us)
        except KafkaException as exc:
            raise _retry_later(f"Kafka refused the batch ({exc}); send it again shortly.") from None
        self.pending += len(admitted.checkins) + len(admitted.dead_letters) + len(admitted.identities)
        left: int | None
        try:
            left = self.producer.flush(self.flush_timeout_s)
        except QrtraceError:  # CheckinProducer.flush raises once any delivery ever failed: judged below
            left = None
        failed = report.failed - failed0
        acknowledged = report.delivered - delivered0 + failed
        # The queue length is authoritative when flush returns it; otherwise count the acknowledgements.
        self.pending = left if left is not None else max(0, self.pending - acknowledged)
        if failed:
            DELIVERY_ERRORS.inc(failed)
            first = report.errors[0] if getattr(report, "errors", None) else "no detail"
            raise _retry_later(f"Kafka did not accept {failed} messages ({first}); send the batch again shortly.")
        if self.pending:
            raise _retry_later(
                f"Kafka did not confirm delivery within {self.flush_timeout_s:g} s; send the same "
                "batch again shortly (repeated scan_ids are dropped)."
            )
        reasons = Tally(d.reason for d in admitted.dead_letters)
        return {
            "received": admitted.received,
            "accepted": len(admitted.checkins),
            "dead_lettered": len(admitted.dead_letters),
            "reasons": dict(sorted(reasons.items())),
        }


INGEST = web.AppKey("ingest", _Ingest)


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def _errors_as_json(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every answer is counted; every error is {"error": sentence}; no traceback ever leaves the process."""
    try:
        response = await handler(request)
    except Refusal as exc:
        response = error_response(exc.status, exc.message, exc.headers)
    except web.HTTPException as exc:  # the router's 404 / 405, or aiohttp's own limits
        if exc.status == 404:
            message = f"There is nothing at {request.path}; scanners POST check-ins to {CHECKINS_PATH}."
        elif exc.status == 405:
            allowed = ", ".join(sorted(getattr(exc, "allowed_methods", ()) or ()))
            message = f"{request.method} is not allowed on {request.path}; use {allowed or 'another method'}."
        else:
            message = f"The request was refused ({exc.reason})."
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        response = error_response(exc.status, message, headers)
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        response = error_response(
            500, "The server failed on this request; it was logged. Nothing is confirmed: send the batch again later."
        )
    HTTP_REQUESTS.labels(_route_name(request), str(response.status)).inc()
    return response


async def _checkins(request: web.Request) -> web.Response:
    return await request.app[INGEST].handle(request)


async def _healthz(_request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def _metrics(_request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def make_app(
    settings: Settings,
    edge: Edge,
    producer: ProducerLike,
    tokens: ScannerTokens,
    max_batch: int = MAX_BATCH,
    max_body_bytes: int = MAX_BODY_BYTES,
    flush_timeout_s: float = FLUSH_TIMEOUT_S,
    known_venues: Collection[str] | None = None,
) -> web.Application:
    """The endpoint as an aiohttp application. `known_venues`: refuse tokens of unregistered venues."""
    app = web.Application(middlewares=[_errors_as_json], client_max_size=max_body_bytes)
    state = _Ingest(
        settings,
        edge,
        producer,
        tokens,
        max_batch,
        max_body_bytes,
        flush_timeout_s,
        frozenset(known_venues) if known_venues is not None else None,
    )
    app[INGEST] = state

    async def stop_executor(_app: web.Application) -> None:
        state.executor.shutdown(wait=True)

    app.on_cleanup.append(stop_executor)
    app.router.add_post(CHECKINS_PATH, _checkins)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics)
    return app


# -- running it -------------------------------------------------------------------------------------------


def registered_venues(settings: Settings) -> set[str]:
    """The venue ids registered in the store (as `produce_lines` reads them)."""
    from qrtrace.sinks.clickhouse_sql import load_sql
    from qrtrace.sinks.stores import open_store

    store = open_store(settings)
    try:
        return set(store.query(load_sql("qrtrace.queries", "venues"))["venue_id"])
    finally:
        store.close()


def run(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8080,
    tokens: ScannerTokens | str | Path | None = None,
    max_batch: int = MAX_BATCH,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> None:
    """Serve scanners until SIGINT/SIGTERM: keys, venue registry, edge and Kafka producer wired as in
    `produce_lines`. Prints the URL once listening (port 0 picks a free port)."""
    import sys

    from qrtrace.identity import Pseudonymiser, Vault, load_or_create_keyring
    from qrtrace.producers.kafka_producer import CheckinProducer
    from qrtrace.schemas.confluent_registry import registry_for

    if not settings.broker:
        raise InputError("No broker given: pass --broker HOST:PORT or set QRTRACE_BROKER.")
    if tokens is None:
        raise InputError("No scanner tokens given: pass --tokens FILE or set QRTRACE_SCANNER_TOKENS.")
    scanner_tokens = tokens if isinstance(tokens, ScannerTokens) else ScannerTokens.from_file(tokens)
    keys = load_or_create_keyring(settings.key_file)
    venues = registered_venues(settings)
    if not venues:
        raise InputError("No venues are registered in the store; import them first (qrtrace venues import).")
    unknown = sorted(scanner_tokens.venues() - venues)
    if unknown:
        sys.stderr.write(
            f"warning: {len(unknown)} token venues are not registered and will be refused "
            f"until they are and the server restarts: {', '.join(unknown[:10])}\n"
        )
    producer = CheckinProducer(settings.broker, registry_for(settings.schema_registry_url), settings.topic_prefix)
    edge = receiving_edge(settings, Pseudonymiser(keys.pseudonym_key), Vault(keys.vault_key), venues)
    app = make_app(settings, edge, producer, scanner_tokens, max_batch, max_body_bytes, known_venues=venues)
    try:
        asyncio.run(_serve(app, host, port, len(scanner_tokens)))
    finally:
        # Only batches already answered 503 can still be waiting here: their scanners send them again.
        try:
            left = producer.flush(30)
            detail = f"{left} messages were still waiting for Kafka" if left else ""
        except QrtraceError as exc:
            detail = str(exc).rstrip(".")
        if detail:
            sys.stderr.write(f"warning: at shutdown: {detail}; their scanners were answered 503.\n")


async def _serve(app: web.Application, host: str, port: int, n_tokens: int) -> None:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            raise InputError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.") from None
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        url = f"http://{shown}:{bound_port}"
        print(
            f"qrtrace ingest server listening on {url} ({n_tokens} scanner tokens): POST {url}{CHECKINS_PATH}, "
            f"GET {url}/healthz, GET {url}/metrics",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
