"""The API's shell over the embedded runtime: every request authenticated, authorized, and (for traces,
exports and re-identification) audited; store access serialised because one process owns the store.

Decisions:
- One lock around the store: chDB is one in-process engine and the ClickHouse client one connection.
  Requests are milliseconds; a trace job takes the lock per statement (LockedStore), so a batch trace
  of minutes does not stop scanners and officers in the meantime.
- Traces run as jobs on one background thread, so the console can show hop-by-hop progress. Results
  are kept pseudonymous in `trace_runs`; identifiers and phone numbers are looked up when a role
  allowed to re-identify reads them, and that read is audited with its stated purpose.
- A verified token is remembered by its SHA-256 for five minutes so that scrypt runs once per token,
  not once per request; expiry and revocation are still checked on every request.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime

import numpy as np
import orjson

from qrtrace import render
from qrtrace.access import (
    PERMISSIONS,
    AccessDenied,
    Action,
    FailureWindow,
    Geography,
    InvalidToken,
    Principal,
    Role,
    Scope,
    TokenExpired,
    TooManyAttempts,
    authorize,
)
from qrtrace.access import visible_communes as _visible
from qrtrace.api import views
from qrtrace.api.metrics_watch import MetricsWatcher
from qrtrace.api.tokens import TokenFile
from qrtrace.domain.categories import load_categories
from qrtrace.domain.poster_pdf import render_poster_pdf
from qrtrace.domain.posters import venue_qr_code
from qrtrace.domain.venue_qr import ForgedVenueQrError, decode_venue_qr, encode_venue_qr, venue_signing_key
from qrtrace.domain.venues import Venue
from qrtrace.embedded import EmbeddedRuntime
from qrtrace.errors import InputError
from qrtrace.producers.coalesce import Share
from qrtrace.producers.edge import AdmittedBatch
from qrtrace.producers.embedded_front import EmbeddedFront
from qrtrace.producers.front import ScannerFront, send
from qrtrace.producers.kafka_front import KafkaFront
from qrtrace.queries.audit import audit_entries
from qrtrace.queries.cases import declared_cases, recent_cases
from qrtrace.queries.coverage import daily_trend
from qrtrace.queries.dead_letters import dead_letter_reasons
from qrtrace.queries.ingest_rates import events_per_minute, ingest_rates
from qrtrace.queries.reference import commune_rows, venue_ids
from qrtrace.queries.reidentify import Identity, reidentify
from qrtrace.queries.store_size import table_sizes
from qrtrace.queries.trace import CaseQuery, TraceResult, TraceRules, exposure_rows
from qrtrace.queries.trace_runs import case_exposures, exposure_people, recent_runs, stored_run
from qrtrace.settings import Settings
from qrtrace.sinks.audit import WRITE_LOCK as AUDIT_WRITE_LOCK
from qrtrace.sinks.audit import AuditLog, now_us
from qrtrace.sinks.locked import LockedStore
from qrtrace.sinks.trace_runs import drop_exposures, write_exposures, write_run

log = logging.getLogger("qrtrace.api")

TOKEN_CACHE_SECONDS = 300
TOKEN_FILE_CHECK_S = 0.5
MAX_TRACE_JOBS_KEPT = 200


class NotFound(Exception):
    """404 with the sentence."""


class Conflict(Exception):
    """409 with the sentence."""


class TooLarge(Exception):
    """413 with the sentence."""


class Unavailable(Exception):
    """503 with the sentence: the server cannot answer until an operator acts."""


@dataclass
class TraceJob:
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


@dataclass
class IngestStats:
    """This server's own check-in ingest, for the operations page (embedded mode has no workers)."""

    batches: int = 0
    received: int = 0
    dead_lettered: int = 0
    seconds: float = 0.0
    last_at_us: int | None = None


class _PseudonymsOnly(dict):
    """render.trace_dict looks people up here: every pseudonym stands for itself."""

    def __missing__(self, key: str) -> Identity:
        return Identity(key, "")


class ApiService:
    """Everything the routes do, with the caller (a Principal) as the first argument."""

    def __init__(self, settings: Settings, runtime: EmbeddedRuntime | None = None) -> None:
        self.settings = settings
        self.rt = runtime or EmbeddedRuntime(settings)
        self._lock = AUDIT_WRITE_LOCK  # one reentrant lock for the store and the audit chain: no lock-order deadlock
        self._tokens = TokenFile(settings.tokens_path)
        self._book_mtime = -1.0
        self._book_checked_at = -TOKEN_FILE_CHECK_S
        self._book = self._tokens.book()
        self._verified: dict[bytes, tuple[str, float]] = {}
        window = settings.auth_failure_window_seconds
        self._failed_by_client = FailureWindow(settings.auth_failures_per_client, window)
        self._failed_by_token = FailureWindow(settings.auth_failures_per_token, window)
        self._taken_ids = FailureWindow(settings.auth_failures_per_client, window)  # per caller (register_venue)
        self._failures_lock = threading.Lock()
        self._jobs: dict[str, TraceJob] = {}
        self._jobs_lock = threading.Lock()
        self._locked_store = LockedStore(self.rt.store, self._lock)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qrtrace-trace")
        self.ingest_stats = IngestStats()
        self.watcher = MetricsWatcher()
        # Where scanner batches go: distributed, one edge and one Kafka producer for the process (created on
        # the first batch); embedded, the group commit into this process's runtime.
        self.front: ScannerFront = (
            KafkaFront(settings, self.rt.keyring, self._venue_ids) if settings.broker
            else EmbeddedFront(self._store_pass, max_queued_events=settings.front_queue_checkins,
                               on_registry_change=self.rt.venues_changed)
        )  # fmt: skip
        self.started_at_us = now_us()
        self.geo = self._geography()
        if isinstance(self.front, KafkaFront):  # the venues the geography just read: no second read
            self.front.prime(self.geo.commune_of_venue)
        self._venue_public_key = venue_signing_key(self.rt.keyring.venue_signing_seed).public_key()

    def close(self) -> None:
        self.front.close()  # finishes (bounded) what is under way: the Kafka front flushes what it queued
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:  # a pass still running (after the commit's bounded wait) finishes first
            self.rt.close()

    # -- authentication and scope -------------------------------------------------------------------------
    def authenticate(self, header: str | None, client: str = "") -> Principal:
        """The caller behind an `Authorization: Bearer qrt_...` header, or InvalidToken with the reason.

        Failed attempts (a malformed, unknown or wrong token; not an expired one) are counted per client
        address and per token id; past the limit the client or token id gets TooManyAttempts (429) until
        the window has moved on. A token already verified (cached) keeps working, so someone guessing at a
        token id does not lock its holder out mid-session."""
        principal = self.cached_caller(header)
        if principal is not None:
            return principal
        token = header[7:].strip()  # type: ignore[index]  # cached_caller refused a header without it
        self._reload_tokens(now=True)
        now = now_us()
        principal = self._verify_limited(token, now, client)
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[hashlib.sha256(token.encode()).digest()] = (token.split("_", 2)[1], time.monotonic())
        return principal

    def cached_caller(self, header: str | None) -> Principal | None:
        """The caller if its token was verified recently (no scrypt run: cheap enough for the event loop of the
        scanner door), None if it needs `authenticate`; InvalidToken for a missing header, and for a cached
        token since revoked or expired."""
        if not header or not header.lower().startswith("bearer "):
            raise InvalidToken("Sign in first: send 'Authorization: Bearer qrt_...' with your API token.")
        self._reload_tokens()
        cached = self._verified.get(hashlib.sha256(header[7:].strip().encode()).digest())
        if not cached or time.monotonic() - cached[1] >= TOKEN_CACHE_SECONDS:
            return None
        record = self._book.records.get(cached[0])
        if record is None:
            raise InvalidToken("The token is not valid.")  # revoked since it was cached
        if now_us() >= record.expires_at_us:
            raise InvalidToken("The token has expired; ask an administrator for a new one.")
        return record.principal

    def _verify_limited(self, token: str, now: int, client: str) -> Principal:
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != "qrt":  # malformed: refused without a scrypt run, cannot succeed
            return self._book.verify(token, now)
        keys = [(self._failed_by_client, client), (self._failed_by_token, parts[1][:64])]
        at = time.monotonic()
        with self._failures_lock:
            wait = max((w.retry_after(k, at) or 0.0 for w, k in keys), default=0.0)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise TooManyAttempts(f"Too many failed sign-in attempts; wait {seconds} s, then sign in with a valid "
                                  "token.", seconds)  # fmt: skip
        try:
            return self._book.verify(token, now)
        except TokenExpired:
            raise
        except InvalidToken:
            with self._failures_lock:
                for w, k in keys:
                    w.fail(k, at)
            raise

    def _reload_tokens(self, now: bool = False) -> None:
        # The file's mtime at most every TOKEN_FILE_CHECK_S (a stat per request was a tenth of a scanner's
        # request): a revoked token still stops working within that half second. A token not verified yet
        # (`now`: its scrypt run costs far more) sees the file as it is, so a token issued a moment ago works.
        at = time.monotonic()
        if not now and at - self._book_checked_at < TOKEN_FILE_CHECK_S:
            return
        self._book_checked_at = at
        mtime = self._tokens.mtime()
        if mtime != self._book_mtime:
            try:
                self._book = self._tokens.book()
            except InputError as exc:
                log.error("token file unreadable: %s", exc)
                raise Unavailable("The server cannot read its token file; an administrator must repair it.") from None
            self._book_mtime = mtime
            self._verified.clear()

    def _geography(self) -> Geography:
        with self._lock:
            communes = commune_rows(self.rt.store)
            venues = self.rt.venues()
        return Geography(
            district_of_commune={c.commune_code: c.district_code for c in communes},
            commune_of_venue={v.venue_id: v.commune_code for v in venues},
        )

    def visible_communes(self, who: Principal) -> frozenset[str] | None:
        if who.role in (Role.SCANNER, Role.VENUE_OWNER):
            return frozenset(self.geo.commune_of_venue.get(v, "") for v in who.venues) - {""}
        return _visible(who, self.geo)

    def _allowed(self, who: Principal, action: Action) -> None:
        """The role check alone, for lists that are then narrowed to the caller's area."""
        if action not in PERMISSIONS[who.role]:
            raise AccessDenied(f"The role {who.role} may not {action.replace('_', ' ')}.")

    def may(self, who: Principal, action: Action) -> bool:
        return action in PERMISSIONS[who.role]

    # -- reference data -----------------------------------------------------------------------------------
    def communes(self, who: Principal) -> list[dict]:
        """The communes in the caller's area."""
        visible = self.visible_communes(who)
        return [c for c in self._all_communes() if visible is None or c["commune_code"] in visible]

    def _all_communes(self) -> list[dict]:
        with self._lock:
            rows = commune_rows(self.rt.store)
        return [asdict(c) for c in rows]

    # -- venues -------------------------------------------------------------------------------------------
    def list_venues(self, who: Principal, commune: str | None, category: str | None) -> list[dict]:
        self._allowed(who, Action.LIST_VENUES)
        if commune is not None:
            authorize(who, Action.LIST_VENUES, Scope(commune_code=commune), self.geo)
        with self._lock:
            venues = self.rt.venues()
        if who.role is Role.VENUE_OWNER:
            venues = [v for v in venues if v.venue_id in who.venues]
        visible = self.visible_communes(who)
        return [
            {"venue_id": v.venue_id, "name": v.name, "category": v.category, "commune_code": v.commune_code,
             "capacity": v.capacity}
            for v in venues
            if (visible is None or v.commune_code in visible)
            and (commune is None or v.commune_code == commune)
            and (category is None or v.category == category)
        ]  # fmt: skip

    def register_venue(self, who: Principal, venue: Venue) -> dict:
        if venue.commune_code not in self.geo.district_of_commune:
            raise InputError(f"Commune {venue.commune_code} is not a registered commune.")
        if venue.category not in load_categories():
            raise InputError(f"Unknown venue category {venue.category!r}.")
        authorize(who, Action.REGISTER_VENUE, Scope(commune_code=venue.commune_code), self.geo)
        # Venue ids are one namespace, so a taken id must be refused, and that refusal is one bit an officer
        # could probe with. It is kept to that bit: the same sentence wherever the venue is (never its
        # commune or name); each refusal is audited and counts against the caller (429 past the limit), and
        # each free id probed registers a real venue in the caller's own area, audited too.
        self._refuse_if_probing(who)
        audit = self.rt.audit.as_actor(who.name)
        with self._lock:
            if venue.venue_id in {v.venue_id for v in self.rt.venues()}:
                audit.record("register_venue", "", venue.venue_id, "refused: the venue_id is taken",
                             commune=venue.commune_code, outcome="id_taken")  # fmt: skip
                with self._failures_lock:
                    self._taken_ids.fail(who.name, time.monotonic())
                raise Conflict(f"The venue_id {venue.venue_id} is taken; choose another venue_id.")
            self.rt.register_venues([venue])
            self.front.venues_changed()
            audit.record("register_venue", "", venue.venue_id, "venue registered", commune=venue.commune_code,
                         outcome="registered")  # fmt: skip
            self.geo = self._geography()
        return {"venue_id": venue.venue_id, "registered": True}

    def _refuse_if_probing(self, who: Principal) -> None:
        with self._failures_lock:
            wait = self._taken_ids.retry_after(who.name, time.monotonic())
        if wait:
            seconds = max(1, math.ceil(wait))
            raise TooManyAttempts(f"Too many registrations of venue ids that are taken; wait {seconds} s and "
                                  "choose ids from your own list.", seconds)  # fmt: skip

    def _venue(self, who: Principal, venue_id: str, action: Action) -> tuple[Venue, str]:
        # The scope first: a scoped caller gets the same 403 for a venue elsewhere and for no venue at all,
        # so it cannot probe which venue ids exist.
        authorize(who, action, Scope(venue_id=venue_id), self.geo)
        with self._lock:
            venue = next((v for v in self.rt.venues() if v.venue_id == venue_id), None)
        if venue is None:
            raise NotFound(f"Venue {venue_id} is not registered.")
        names = {c["commune_code"]: c["name_vi"] for c in self._all_communes()}
        return venue, names.get(venue.commune_code, venue.commune_code)

    def venue_qr(self, who: Principal, venue_id: str, kind: str, lang: str) -> bytes:
        """The signed venue QR as PNG or SVG, or the A4 poster as PDF."""
        venue, commune_name = self._venue(who, venue_id, Action.ISSUE_VENUE_QR)
        payload = encode_venue_qr(venue, venue_signing_key(self.rt.keyring.venue_signing_seed),
                                  datetime.now(self.settings.display_tz))  # fmt: skip
        if kind == "pdf":
            return render_poster_pdf(venue, payload, commune_name, lang)
        import io

        buf = io.BytesIO()
        venue_qr_code(payload).save(buf, kind=kind, scale=10, border=4)
        return buf.getvalue()

    # -- check-ins ----------------------------------------------------------------------------------------
    def check_ingest_role(self, who: Principal) -> None:
        self._allowed(who, Action.INGEST_CHECKINS)

    def checkin_lines(self, who: Principal, records: Sequence[dict]) -> tuple[list[bytes], set[str]]:
        """A scanner's batch as JSON lines and the venues it names: every check-in for the caller's own venue
        and any scanned venue QR genuine, or the whole batch is refused (AccessDenied, InputError)."""
        public_key = self._venue_public_key
        lines, venue_ids = [], set()
        for i, record in enumerate(records, start=1):
            venue_id = record["venue_id"]
            if venue_id not in venue_ids:
                authorize(who, Action.INGEST_CHECKINS, Scope(venue_id=venue_id), self.geo)
                venue_ids.add(venue_id)
            qr = record.pop("venue_qr", None)
            if qr is not None:
                try:
                    claims = decode_venue_qr(qr, public_key)
                except ForgedVenueQrError as exc:  # a 400 for the whole batch: a forged poster is an incident
                    raise ForgedVenueQrError(f"Check-in {i}: {exc} Nothing from this batch was stored.") from None
                if claims.venue_id != venue_id:
                    raise InputError(f"Check-in {i} carries the QR of venue {claims.venue_id}, not "
                                     f"{venue_id}; nothing from this batch was stored.")  # fmt: skip
            if record.get("declaration") is None:
                record.pop("declaration", None)
            lines.append(orjson.dumps(record))
        return lines, venue_ids

    def ingest(self, who: Principal, records: Sequence[dict]) -> dict:
        """A scanner's batch, blocking until it is kept (the scanner door does the same without a thread)."""
        self._allowed(who, Action.INGEST_CHECKINS)
        if not records:
            return self.checkin_answer(None)
        lines, venue_ids = self.checkin_lines(who, records)
        started = time.perf_counter()
        share = send(self.front, lines, venue_ids, "api")  # FrontUnavailable: 503 + Retry-After
        self.count_ingest(share, time.perf_counter() - started)
        return self.checkin_answer(share)

    def checkin_answer(self, share: Share | None) -> dict:
        """A 202's body: `accepted` counts the scans that passed the edge (a retried scan_id is dropped
        downstream, so resending a batch is safe), `dead_lettered` and `reasons` the ones kept as dead letters;
        `stored` (embedded) or `queued` (Kafka acknowledged it) says what the 202 means."""
        letters = share.dead_letters if share is not None else []
        answer = {"received": share.received if share is not None else 0,
                  "accepted": len(share.checkins) if share is not None else 0, "dead_lettered": len(letters),
                  "reasons": dict(Counter(d.reason for d in letters))}  # fmt: skip
        return {**answer, "queued": True} if self.front.kind == "kafka" else {**answer, "stored": True}

    def _venue_ids(self) -> list[str]:
        """The registered venue ids, for the Kafka front's cache."""
        with self._lock:
            return venue_ids(self.rt.store)

    @property
    def scanner_front(self) -> KafkaFront | None:
        """The process's way onto Kafka (distributed mode), None in embedded mode."""
        return self.front if isinstance(self.front, KafkaFront) else None

    def _store_pass(self, lines: list[bytes], source: str) -> AdmittedBatch:
        """One pass through the runtime for every request the group commit took (its thread)."""
        with self._lock:
            return self.rt.ingest_pass(lines, source)

    def count_ingest(self, share: Share, seconds: float) -> None:
        """A kept scanner batch, for the operations page."""
        with self._jobs_lock:
            s = self.ingest_stats
            s.batches += 1
            s.received += share.received
            s.dead_lettered += len(share.dead_letters)
            s.seconds += seconds
            s.last_at_us = now_us()

    # -- cases and traces ---------------------------------------------------------------------------------
    def declare_case(self, who: Principal, case_id: str, person_id: str, from_us: int, to_us: int) -> dict:
        authorize(who, Action.DECLARE_CASE, Scope(), self.geo)
        if to_us < from_us:
            raise InputError("The infectious window ends before it starts; 'to' must be after 'from'.")
        with self._lock:
            if declared_cases(self.rt.store, [case_id]):
                raise Conflict(f"Case {case_id} is already declared; choose another case_id.")
            person = self.rt.declare_case(case_id, person_id, from_us, to_us, actor=who.name)
            self.rt.audit.as_actor(who.name).record("declare_case", case_id, person, "positive case declared",
                                                    from_us=from_us, to_us=to_us)  # fmt: skip
        return {"case_id": case_id, "declared": True}

    def list_cases(self, who: Principal, limit: int) -> list[dict]:
        authorize(who, Action.RUN_TRACE, Scope(), self.geo)
        with self._lock:
            cases = recent_cases(self.rt.store, limit)
        tz = self.settings.display_tz
        return [
            {"case_id": c.case_id, "infectious_from": render.iso(c.infectious_from_us, tz),
             "infectious_to": render.iso(c.infectious_to_us, tz), "declared_at": render.iso(c.declared_at_us, tz),
             "declared_by": c.declared_by}
            for c in cases
        ]  # fmt: skip

    def start_trace(self, who: Principal, case_ids: list[str], rules: TraceRules, purpose: str) -> TraceJob:
        authorize(who, Action.RUN_TRACE, Scope(), self.geo)
        wanted = list(dict.fromkeys(case_ids))
        if len(wanted) > self.settings.trace_max_cases:
            raise TooLarge(f"A trace run takes at most {self.settings.trace_max_cases:,} cases "
                           f"(QRTRACE_TRACE_MAX_CASES), not {len(wanted):,}; split the cases into several runs.")
        with self._lock:
            found = declared_cases(self.rt.store, wanted)
        missing = [c for c in wanted if c not in found]
        if missing:
            raise NotFound(f"No declared case {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1
                           else "") + "; declare it first with POST /api/cases.")  # fmt: skip
        job = TraceJob(f"tr-{secrets.token_hex(6)}", who.name, wanted, rules.depth, purpose, now_us())
        with self._jobs_lock:
            self._jobs[job.trace_id] = job
            if len(self._jobs) > MAX_TRACE_JOBS_KEPT:
                for old in [j for j in self._jobs if self._jobs[j].status != "running"][:50]:
                    del self._jobs[old]
        self._executor.submit(self._run_trace, job, [found[c] for c in wanted], rules)
        return job

    def _run_trace(self, job: TraceJob, queries: list[CaseQuery], rules: TraceRules) -> None:
        """Trace a chunk of cases at a time and store each chunk's exposures as rows before the next chunk
        (`trace_exposures`), keeping only per-case counts: memory is one chunk's, whatever the batch."""

        def progress(done: float) -> None:
            job.hops_done = max(job.hops_done, min(job.depth, int(done * job.depth)))

        store = self._locked_store
        contacts = [0] * len(queries)
        exposures = [0] * len(queries)
        try:
            chunks = self.rt.trace_chunks(queries, rules, job.purpose, AuditLog(store, job.actor), progress, store)
            for first, batch in chunks:
                write_exposures(store, job.trace_id, job.started_at_us, exposure_rows(batch, first))
                for case, count in enumerate(np.bincount(batch.contacts["case"], minlength=len(batch.cases))):
                    contacts[first + case] = int(count)
                for case, count in enumerate(np.bincount(batch.exposures["case"], minlength=len(batch.cases))):
                    exposures[first + case] = int(count)
            self._store_run(job, queries, rules, contacts, exposures)
            job.contacts = sum(contacts)
            job.hops_done = job.depth
            job.status = "done"
        except Exception as exc:  # a job's failure is reported to its poller as a sentence, and logged
            log.exception("trace %s failed", job.trace_id)
            job.status = "failed"
            job.error = (str(exc) if isinstance(exc, InputError) else
                         f"The trace failed ({type(exc).__name__}); the server logged the details.")  # fmt: skip
            try:  # a failed run has no trace_runs row, so its rows are never read: drop them
                drop_exposures(store, job.trace_id)
            except Exception:
                log.exception("could not drop the rows of failed trace %s", job.trace_id)

    def _store_run(self, job: TraceJob, queries: list[CaseQuery], rules: TraceRules, contacts: list[int],
                   exposures: list[int]) -> None:  # fmt: skip
        """The run's row in `trace_runs`: per case the document header (case, window, rules) and its counts;
        the contacts and exposures are rows of `trace_exposures`."""
        headers = []
        for q, n, rows in zip(queries, contacts, exposures, strict=True):
            header = render.trace_dict(TraceResult(q, rules, []), _PseudonymsOnly(), self.settings.display_tz)
            del header["contacts"]
            headers.append({**header, "contacts_count": n, "exposure_rows": rows})
        write_run(self._locked_store, job.trace_id, job.started_at_us, now_us(), job.actor, job.case_ids,
                  job.purpose, rules, headers)  # fmt: skip

    def trace_status(self, who: Principal, trace_id: str) -> dict:
        authorize(who, Action.RUN_TRACE, Scope(), self.geo)
        with self._jobs_lock:
            job = self._jobs.get(trace_id)
        if job is not None and job.status != "done":
            return {"trace_id": trace_id, "status": job.status, "hops_done": job.hops_done, "depth": job.depth,
                    "error": job.error}  # fmt: skip
        run = self._load_run(trace_id)
        return {"trace_id": trace_id, "status": "done", "hops_done": run["depth"], "depth": run["depth"],
                "error": None}  # fmt: skip

    def _load_run(self, trace_id: str) -> dict:
        with self._lock:
            run = stored_run(self.rt.store, trace_id)
        if run is None:
            raise NotFound(f"No finished trace {trace_id}.")
        rules = orjson.loads(run.rules)
        stored = orjson.loads(run.result)
        # Runs stored by earlier versions hold whole documents; newer ones per-case headers (rows elsewhere).
        docs = None if all("exposure_rows" in d for d in stored) else stored
        headers = stored if docs is None else [{**d, "exposure_rows": sum(len(c["exposures"]) for c in d["contacts"])}
                                               for d in stored]  # fmt: skip
        return {"trace_id": trace_id, "actor": run.actor, "case_ids": run.case_ids.split(","),
                "purpose": run.purpose, "depth": rules["depth"], "docs": docs, "headers": headers,
                "started_at_us": run.started_at_us, "finished_at_us": run.finished_at_us}  # fmt: skip

    def _case_docs(self, run: dict, cases: Sequence[int]) -> Iterator[dict]:
        """The pseudonymous documents of the run's cases (by index), one case read at a time."""
        for i in cases:
            header = run["headers"][i]
            if run["docs"] is not None:
                yield run["docs"][i]
                continue
            header = {k: v for k, v in header.items() if k not in ("contacts_count", "exposure_rows")}
            yield render.trace_doc_from_rows(header, self._case_rows(run["trace_id"], i), self.settings.display_tz)

    def _case_rows(self, trace_id: str, case: int) -> dict:
        return case_exposures(self._locked_store, trace_id, case)

    def _run_people(self, who: Principal, run: dict, purpose: str) -> dict[str, views.Person] | None:
        """Identifiers and phones of everyone the run names, for a role allowed to re-identify (audited);
        None for other roles. One vault read for the run: bounded by the people, not the exposures."""
        if not self.may(who, Action.REIDENTIFY):
            return None
        if run["docs"] is not None:
            persons = views.pseudonyms_in(run["docs"])
        else:
            persons = exposure_people(self._locked_store, run["trace_id"]) | {h["case"] for h in run["headers"]}
        with self._lock:
            found = reidentify(self.rt.store, self.rt.vault, self.rt.audit.as_actor(who.name), sorted(persons),
                               ",".join(run["case_ids"]), purpose)  # fmt: skip
        return {p: views.Person(i.identifier, i.contact or None) for p, i in found.items()}

    def _job_list(self) -> list[TraceJob]:
        with self._jobs_lock:
            return list(self._jobs.values())

    def trace_result(self, who: Principal, trace_id: str, purpose: str, case_id: str | None = None) -> dict:
        """The cohort documents (all cases, or the one `case_id`); identifiers and phones only for roles
        allowed to re-identify, audited with the purpose the reader states (not the purpose of whoever ran
        the trace). A result of more than QRTRACE_TRACE_RESULT_MAX_ROWS exposures is refused with a sentence
        (read it per case, or download the call list, which streams)."""
        authorize(who, Action.RUN_TRACE, Scope(), self.geo)
        purpose = _purpose(purpose)
        run = self._load_run(trace_id)
        cases = list(range(len(run["headers"])))
        if case_id is not None:
            cases = [i for i in cases if run["headers"][i]["case_id"] == case_id]
            if not cases:
                raise NotFound(f"The trace {trace_id} has no case {case_id}.")
        rows = sum(run["headers"][i]["exposure_rows"] for i in cases)
        limit = self.settings.trace_result_max_rows
        if rows > limit:
            raise TooLarge(f"This result holds {rows:,} exposures, more than the {limit:,} one answer may hold "
                           "(QRTRACE_TRACE_RESULT_MAX_ROWS); read one case at a time (?case_id=...) or download "
                           "the call list.")  # fmt: skip
        docs = list(self._case_docs(run, cases))
        people = self._run_people(who, run, purpose)
        docs = views.show_people(docs, people)
        tz = self.settings.display_tz
        return {"trace_id": trace_id, "status": "done", "purpose": run["purpose"], "run_by": run["actor"],
                "started_at": render.iso(run["started_at_us"], tz),
                "finished_at": render.iso(run["finished_at_us"], tz),
                "cases": docs, "cohort": render.combined_cohort(docs) if len(docs) > 1 else None}  # fmt: skip

    def call_list(self, who: Principal, trace_id: str, fmt: str, purpose: str, lang: str) -> Iterator[bytes]:
        """The call list as pieces of bytes, built one case at a time (CSV streams; XLSX is written to a
        temporary file in write-only mode, split into sheets, then streamed). Audited before the first byte."""
        import os
        import tempfile

        from qrtrace.api import exports

        authorize(who, Action.EXPORT_CALL_LIST, Scope(), self.geo)
        purpose = _purpose(purpose)
        run = self._load_run(trace_id)
        total = sum(h["exposure_rows"] for h in run["headers"])
        if fmt == "xlsx" and total > self.settings.xlsx_max_rows:
            raise TooLarge(f"This call list has {total:,} rows, more than the {self.settings.xlsx_max_rows:,} an "
                           "XLSX download may hold (QRTRACE_XLSX_MAX_ROWS); download it as CSV.")  # fmt: skip
        people = self._run_people(who, run, purpose)
        tz = self.settings.display_tz
        # The existing order: by case id, then hop, first exposure and person as shown.
        order = sorted(range(len(run["headers"])), key=lambda i: run["headers"][i]["case_id"])

        def chunks() -> Iterator[list[tuple]]:
            for i in order:
                header = run["headers"][i]
                if run["docs"] is not None:
                    yield views.call_list_rows(views.show_people([run["docs"][i]], people))
                else:
                    yield exports.call_list_case_rows(header, self._case_rows(trace_id, i), people, tz)

        with self._lock:
            self.rt.audit.as_actor(who.name).record(
                "export_call_list", ",".join(run["case_ids"]), trace_id, purpose, format=fmt, rows=total,
                reidentified=people is not None,
            )  # fmt: skip
        if fmt != "xlsx":
            return exports.call_list_csv_stream(chunks(), lang)
        fd, path = tempfile.mkstemp(prefix="qrtrace-call-list-", suffix=".xlsx")  # 0600: it holds identifiers
        os.close(fd)
        try:
            exports.call_list_xlsx_file(chunks(), lang, path)
        except BaseException:
            os.unlink(path)
            raise
        return _file_pieces(path)

    def list_traces(self, who: Principal, limit: int) -> list[dict]:
        authorize(who, Action.RUN_TRACE, Scope(), self.geo)
        with self._lock:
            runs = recent_runs(self.rt.store, limit)
        tz = self.settings.display_tz
        done = [
            {"trace_id": r.trace_id, "status": "done", "started_at": render.iso(r.started_at_us, tz),
             "run_by": r.actor, "case_ids": r.case_ids.split(","), "purpose": r.purpose}
            for r in runs
        ]  # fmt: skip
        running = [
            {"trace_id": j.trace_id, "status": j.status, "started_at": render.iso(j.started_at_us, tz),
             "run_by": j.actor, "case_ids": j.case_ids, "purpose": j.purpose}
            for j in self._job_list() if j.status != "done"
        ]  # fmt: skip
        return running + done

    # -- reports ------------------------------------------------------------------------------------------
    def coverage(self, who: Principal, commune: str | None, as_of_us: int | None, lang: str | None = None) -> dict:
        visible = self._report_area(who, Action.READ_COVERAGE, commune)
        as_of = as_of_us if as_of_us is not None else now_us()
        with self._lock:
            day = self.rt.coverage(as_of, 1)
            week = self.rt.coverage(as_of, 7)
        return views.coverage_view(day, week, visible, lang or self.settings.lang)

    def _report_area(self, who: Principal, action: Action, commune: str | None) -> frozenset[str] | None:
        self._allowed(who, action)
        if commune is not None:
            authorize(who, action, Scope(commune_code=commune), self.geo)
            return frozenset({commune})
        return self.visible_communes(who)

    def trend(self, who: Principal, commune: str | None, days: int, as_of_us: int | None) -> list[dict]:
        visible = self._report_area(who, Action.READ_COVERAGE, commune)
        as_of = as_of_us if as_of_us is not None else now_us()
        with self._lock:
            rows, first_day = self.rt.coverage_trend(as_of, days)
        return daily_trend(rows, visible, first_day, days)

    def coverage_export(self, who: Principal, commune: str | None, as_of_us: int | None, fmt: str, lang: str,
                        purpose: str) -> bytes:  # fmt: skip
        from qrtrace.api import exports

        visible = self._report_area(who, Action.EXPORT_COVERAGE, commune)
        view = self.coverage(who, commune, as_of_us, lang)
        area = self._area_name(who, visible)
        if fmt == "xlsx":
            data = exports.coverage_xlsx(view, lang, area, self.settings.display_tz)
        else:
            data = exports.coverage_csv(view, lang)
        with self._lock:  # the file is built: only now is it an export
            self.rt.audit.as_actor(who.name).record("export_coverage", "", area, _purpose(purpose), format=fmt,
                                                    communes=len(view["communes"]))  # fmt: skip
        return data

    def _area_name(self, who: Principal, visible: frozenset[str] | None) -> str:
        communes = self._all_communes()
        if visible is not None and len(visible) == 1:
            return next((c["name_vi"] for c in communes if c["commune_code"] in visible), "")
        if who.role is Role.DISTRICT_OFFICER or visible is None:
            district = next((c["district_name_vi"] for c in communes
                             if who.district_code in (None, c["district_code"])), "")  # fmt: skip
            return district
        return ", ".join(sorted(c["name_vi"] for c in communes if c["commune_code"] in visible))

    # -- operations and audit -----------------------------------------------------------------------------
    def operations(self, who: Principal) -> dict:
        from qrtrace.api.scanner_door import front_door_stats

        authorize(who, Action.READ_OPERATIONS, Scope(), self.geo)
        now = now_us()
        with self._lock:
            dead = dead_letter_reasons(self.rt.store, now - 7 * views.US_PER_DAY)
            sizes = table_sizes(self.rt.store)
            stored = ingest_rates(self.rt.store, now - 60 * 60_000_000)
        per_minute = events_per_minute(stored)
        return {
            "mode": "embedded" if self.settings.broker is None else "distributed",
            "store": "chDB (embedded)" if self.settings.is_embedded_store else "ClickHouse server",
            "workers": self.watcher.scrape(self.settings.metrics_urls),
            "front_door": {"kind": self.front.kind, **front_door_stats()},
            "api_ingest": {**self.ingest_stats.__dict__,
                           "events_per_second": (self.ingest_stats.received / self.ingest_stats.seconds
                                                 if self.ingest_stats.seconds else None)},
            "stored_per_minute": [{"minute_us": m * 60_000_000, "events": n} for m, n in sorted(per_minute.items())],
            "dead_letters": [{"reason": d.reason, "count": d.count,
                              "last_at": render.iso(d.last_at_us, self.settings.display_tz)} for d in dead],
            "store_size": [{"table": s.table, "rows": s.rows, "bytes": s.bytes} for s in sizes],
        }  # fmt: skip

    def audit_log(self, who: Principal, since_us: int, action: str, case_id: str, limit: int) -> list[dict]:
        authorize(who, Action.READ_AUDIT, Scope(), self.geo)
        with self._lock:
            entries = audit_entries(self.rt.store, since_us, action, case_id, limit)
        tz = self.settings.display_tz
        return [
            {"at": render.iso(e.at_us, tz), "actor": e.actor, "action": e.action, "case_id": e.case_id,
             "subject": e.subject, "purpose": e.purpose, "detail": orjson.loads(e.detail) if e.detail else {}}
            for e in entries
        ]  # fmt: skip


def _file_pieces(path: str, size: int = 1 << 20) -> Iterator[bytes]:
    """A temporary file's bytes in pieces; the file is removed once read (or abandoned)."""
    import os

    try:
        with open(path, "rb") as fh:
            while piece := fh.read(size):
                yield piece
    finally:
        os.unlink(path)


def _purpose(text: str) -> str:
    """The stated purpose, trimmed; a purpose of blanks is no purpose."""
    text = " ".join(text.split())
    if len(text) < 3:
        raise InputError("State the purpose in a few words (at least 3 characters); it goes to the audit log.")
    return text
