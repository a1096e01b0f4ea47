"""What every part of the service shares: the runtime and its store lock, the token book, the caller's area,
the scanner front, and the trace jobs' thread. The parts (api/services/<family>.py) are mixins of ServiceCore.

Decisions:
- One lock around the store: chDB is one in-process engine and the ClickHouse client one connection.
  Requests are milliseconds; a trace job takes the lock per statement (LockedStore), so a batch trace
  of minutes does not stop scanners and officers in the meantime.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from qrtrace.access import PERMISSIONS, AccessDenied, Action, FailureWindow, Geography, Principal, Role
from qrtrace.access import visible_communes as _visible
from qrtrace.api.metrics_watch import MetricsWatcher
from qrtrace.api.services.jobs import TraceJob
from qrtrace.api.tokens import TokenFile
from qrtrace.domain.venue_qr import venue_signing_key
from qrtrace.embedded import EmbeddedRuntime
from qrtrace.errors import InputError
from qrtrace.producers.edge import AdmittedBatch
from qrtrace.producers.embedded_front import EmbeddedFront
from qrtrace.producers.front import ScannerFront
from qrtrace.producers.kafka_front import KafkaFront
from qrtrace.queries.reference import commune_rows, venue_zones
from qrtrace.settings import Settings
from qrtrace.sinks.audit import WRITE_LOCK as AUDIT_WRITE_LOCK
from qrtrace.sinks.audit import now_us
from qrtrace.sinks.locked import LockedStore

TOKEN_FILE_CHECK_S = 0.5


@dataclass
class IngestStats:
    """This server's own check-in ingest, for the operations page (embedded mode has no workers)."""

    batches: int = 0
    received: int = 0
    dead_lettered: int = 0
    seconds: float = 0.0
    last_at_us: int | None = None


class ServiceCore:
    """The service's state and the checks every route family uses; the families add the routes' methods."""

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
        if settings.trace_reader == "index":  # warm, and caught up with the visit feed twice a second
            follower = self.rt.follow_trace_index(self._locked_store)
            how = f"built from the store in {follower.built_s:.1f} s" if follower.built_s is not None else "opened"
            logging.getLogger("qrtrace.api").info("trace index: %s visits, %s", f"{len(follower.current()):,}", how)
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
            self.front.prime(self._zones_at_start)
        self._venue_public_key = venue_signing_key(self.rt.keyring.venue_signing_seed).public_key()

    def close(self) -> None:
        """Finish what is under way (bounded), then close the runtime and its store."""
        self.front.close()  # finishes (bounded) what is under way: the Kafka front flushes what it queued
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:  # a pass still running (after the commit's bounded wait) finishes first
            self.rt.close()

    # -- scope --------------------------------------------------------------------------------------------
    def _geography(self) -> Geography:
        with self._lock:
            communes = commune_rows(self.rt.store)
            venues = self.rt.venues()
        self._zones_at_start = {v.venue_id: v.zones for v in venues}  # the Kafka front's first registry read
        return Geography(
            district_of_commune={c.commune_code: c.district_code for c in communes},
            commune_of_venue={v.venue_id: v.commune_code for v in venues},
        )

    def visible_communes(self, who: Principal) -> frozenset[str] | None:
        """The communes the caller may see (None: all of them)."""
        if who.role in (Role.SCANNER, Role.VENUE_OWNER):
            return frozenset(self.geo.commune_of_venue.get(v, "") for v in who.venues) - {""}
        return _visible(who, self.geo)

    def _allowed(self, who: Principal, action: Action) -> None:
        """The role check alone, for lists that are then narrowed to the caller's area."""
        if action not in PERMISSIONS[who.role]:
            raise AccessDenied(f"The role {who.role} may not {action.replace('_', ' ')}.")

    def may(self, who: Principal, action: Action) -> bool:
        """Whether the caller's role may take `action` at all (anywhere)."""
        return action in PERMISSIONS[who.role]

    def _all_communes(self) -> list[dict]:
        with self._lock:
            rows = commune_rows(self.rt.store)
        return [asdict(c) for c in rows]

    # -- the scanner front --------------------------------------------------------------------------------
    def _venue_ids(self) -> dict[str, tuple[str, ...]]:
        """The registered venue ids with their zones, for the Kafka front's cache."""
        with self._lock:
            return venue_zones(self.rt.store)

    @property
    def scanner_front(self) -> KafkaFront | None:
        """The process's way onto Kafka (distributed mode), None in embedded mode."""
        return self.front if isinstance(self.front, KafkaFront) else None

    def _store_pass(self, lines: list[bytes], source: str) -> AdmittedBatch:
        """One pass through the runtime for every request the group commit took (its thread)."""
        with self._lock:
            return self.rt.ingest_pass(lines, source)


def stated_purpose(text: str) -> str:
    """The stated purpose, trimmed; a purpose of blanks is no purpose."""
    text = " ".join(text.split())
    if len(text) < 3:
        raise InputError("State the purpose in a few words (at least 3 characters); it goes to the audit log.")
    return text
