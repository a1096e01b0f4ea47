"""The naive ingest baseline: one record at a time, the way a first attempt would write it.

Per JSON line: `json.loads`, the contract's checks in plain Python, `datetime.fromisoformat`, one
`hmac.new(...)` per event (no memo), a dict of seen scan ids, a heap that holds events until the
watermark (latest event time - allowed lateness) passes them, docs/design.md's visit rule over a dict of
per-(person, venue) state, and **one INSERT per row** into the same chDB tables the fast path uses:
the check-in, each visit row when a visit opens (provisional) or closes (final), each dead letter.

It does less than the fast path (no identity-vault rows, no occupancy windows), so the speed-up
measured against it is a lower bound. It is a benchmark baseline, not part of qrtrace.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import json
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from qrtrace.identity import PSEUDONYM_BYTES, Vault, normalise_identifier
from qrtrace.sinks.store import Store

REQUIRED_FIELDS = ("scan_id", "venue_id", "person_id", "direction", "event_time", "mode", "scanner_id")
MODES = ("venue_qr", "personal_qr", "manual")
MAX_FIELD_LENGTH = 128
MAX_RECORD_BYTES = 16_384
SAFE_FIELDS = ("scan_id", "venue_id", "direction", "event_time", "mode", "scanner_id")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
ONE_MINUTE = timedelta(minutes=1)

# Visit rows, as in the fast path's tables: closed_by and version codes.
CLOSED_BY_DWELL, CLOSED_BY_CHECKOUT, CLOSED_BY_NEXT_CHECKIN = 0, 1, 2
PROVISIONAL, FINAL = 0, 1
# Until 20 events have been paired, assume this much pairing + inserting per held event (seconds):
# about two single-row INSERTs of ~15 ms each on the project's machine.
PRIOR_RELEASE_COST_S = 0.04


class Refused(Exception):
    """A record that breaks the contract: becomes a dead letter with this reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass
class NaiveResult:
    events: int  # lines read (every one fully processed: paired and inserted, or dead-lettered)
    seconds: float
    stopped_early: bool  # the time budget ended the run before all offered lines were read
    inserts: int
    deduplicated: int
    outcomes: Counter[str]
    dead_letters: Counter[str]
    # (venue, person, start, opened_by) -> (end, closed_by, version) of the latest row written
    visits: dict[tuple[str, str, int, str], tuple[int, int, int]]
    breakdown: dict[str, float] = field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


class NaiveIngest:
    """Record-at-a-time ingest into an open store."""

    def __init__(
        self,
        store: Store,
        pseudonym_key: bytes,
        vault: Vault,
        dwell_us_by_venue: Mapping[str, int],
        allowed_lateness_us: int,
        source: str = "naive-bench",
    ) -> None:
        self.store = store
        self.key = pseudonym_key
        self.vault = vault
        self.dwell = dict(dwell_us_by_venue)
        self.lateness = allowed_lateness_us
        self.source = source
        self.seen_scans: dict[str, int] = {}
        self.state: dict[tuple[str, str], list] = {}  # (person, venue) -> [open_start|None, open_scan, last_time]
        self.held: list[tuple[int, int, dict]] = []  # heap of (event_time_us, arrival, event)
        self.max_time = -(2**62)
        self.arrivals = 0
        self.inserts = 0
        self.deduplicated = 0
        self.outcomes: Counter[str] = Counter()
        self.dead: Counter[str] = Counter()
        self.visits: dict[tuple[str, str, int, str], tuple[int, int, int]] = {}
        self.t: Counter[str] = Counter()  # seconds per step
        self.released = 0
        self.release_seconds = 0.0

    # -- one line -----------------------------------------------------------------------------
    def ingest_line(self, line: bytes) -> None:
        clock = time.perf_counter
        t0 = clock()
        try:
            if len(line) > MAX_RECORD_BYTES:
                raise Refused("record_too_large", f"a record may be at most {MAX_RECORD_BYTES} bytes")
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise Refused("malformed_json", f"not valid JSON: {exc}") from None
            if not isinstance(record, dict):
                raise Refused("not_an_object", "a record must be a JSON object")
        except Refused as refused:
            self.t["parse"] += clock() - t0
            self._edge_dead_letter(line, None, refused)
            return
        t1 = clock()
        self.t["parse"] += t1 - t0
        try:
            event = self._validate(record)
        except Refused as refused:
            self.t["validate"] += clock() - t1
            self._edge_dead_letter(line, record, refused)
            return
        t2 = clock()
        self.t["validate"] += t2 - t1
        event["person"] = self._pseudonym(event.pop("person_id"))
        decl = event["declaration"]
        event["declaration_sealed"] = self.vault.seal(decl, "declaration") if decl else ""
        t3 = clock()
        self.t["pseudonymise"] += t3 - t2
        if event["scan_id"] in self.seen_scans:  # a retried delivery: the first one wins
            self.deduplicated += 1
            self.t["dedupe"] += clock() - t3
            return
        self.seen_scans[event["scan_id"]] = event["event_time_us"]
        t4 = clock()
        self.t["dedupe"] += t4 - t3
        heapq.heappush(self.held, (event["event_time_us"], self.arrivals, event))
        self.arrivals += 1
        self.max_time = max(self.max_time, event["event_time_us"])
        watermark = self.max_time - self.lateness
        ready = []
        while self.held and self.held[0][0] <= watermark:
            ready.append(heapq.heappop(self.held)[2])
        self.t["reorder"] += clock() - t4
        for e in ready:
            self._release(e)

    def flush(self) -> None:
        """End of input: pair everything still held, in event-time order."""
        while self.held:  # bounded: every pass pops one
            t0 = time.perf_counter()
            event = heapq.heappop(self.held)[2]
            self.t["reorder"] += time.perf_counter() - t0
            self._release(event)

    def run(self, lines: Sequence[bytes], budget_s: float | None = None) -> NaiveResult:
        """Ingest `lines` one by one, then flush. With a budget, stop reading early enough that the
        run, flush included, ends near `budget_s` (estimated from the cost of pairing so far)."""
        started = time.perf_counter()
        deadline = started + budget_s if budget_s else float("inf")
        read = 0
        stopped = False
        for line in lines:
            if read and time.perf_counter() + len(self.held) * self._release_cost() >= deadline:
                stopped = True
                break
            self.ingest_line(line)
            read += 1
        self.flush()
        seconds = time.perf_counter() - started
        return NaiveResult(
            events=read,
            seconds=seconds,
            stopped_early=stopped,
            inserts=self.inserts,
            deduplicated=self.deduplicated,
            outcomes=self.outcomes,
            dead_letters=self.dead,
            visits=self.visits,
            breakdown=dict(self.t),
        )

    def _release_cost(self) -> float:
        if self.released < 20:
            return PRIOR_RELEASE_COST_S
        return self.release_seconds / self.released

    # -- steps --------------------------------------------------------------------------------
    def _validate(self, record: dict) -> dict:
        for name in REQUIRED_FIELDS:
            value = record.get(name)
            if value is None or value == "":
                raise Refused("missing_field", f"field {name} is missing or empty")
            if not isinstance(value, str):
                raise Refused("wrong_type", f"field {name} must be a string, got {type(value).__name__}")
            if len(value) > MAX_FIELD_LENGTH:
                raise Refused("field_too_long", f"field {name} is longer than {MAX_FIELD_LENGTH} characters")
        direction = record["direction"]
        if direction not in ("in", "out"):
            raise Refused("bad_direction", f"direction must be 'in' or 'out', got {direction!r}")
        if record["mode"] not in MODES:
            raise Refused("bad_mode", f"mode must be one of {', '.join(MODES)}, got {record['mode']!r}")
        text = record["event_time"]
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            when = None
        # The contract's shape: date 'T' time with seconds, and an explicit offset.
        if when is None or when.tzinfo is None or len(text) < 20 or text[10] != "T" or text[19] not in ".Z+-":
            raise Refused("bad_event_time", f"event_time {text!r} is not ISO 8601 with a UTC offset")
        if record["venue_id"] not in self.dwell:
            raise Refused("unknown_venue", f"venue {record['venue_id']} is not registered")
        decl = record.get("declaration")
        if decl is not None and not isinstance(decl, dict):
            raise Refused("wrong_type", "field declaration must be an object")
        offset = when.utcoffset()
        return {
            "scan_id": record["scan_id"],
            "venue_id": record["venue_id"],
            "person_id": record["person_id"],
            "is_in": direction == "in",
            "event_time_us": (when - EPOCH) // ONE_US,
            "offset_minutes": offset // ONE_MINUTE if offset is not None else 0,
            "mode": record["mode"],
            "scanner_id": record["scanner_id"],
            "declaration": json.dumps(decl, sort_keys=True, separators=(",", ":")) if decl is not None else "",
        }

    def _pseudonym(self, identifier: str) -> str:
        canon = normalise_identifier(identifier)
        return hmac.new(self.key, canon.encode(), hashlib.sha256).digest()[:PSEUDONYM_BYTES].hex()

    def _release(self, e: dict) -> None:
        """Pair one event (docs/design.md's visit rule) and write its rows, one INSERT each."""
        started = time.perf_counter()
        key = (e["person"], e["venue_id"])
        t = e["event_time_us"]
        dwell = self.dwell[e["venue_id"]]
        rows: list[tuple[str, int, int, int, int, str]] = []  # visit rows: start, end, closed_by, version, opened_by
        st = self.state.get(key)
        if st is None:
            st = self.state[key] = [None, "", t]
            outcome = None
        elif t < st[2]:
            outcome = "late"  # behind events of this key already paired (beyond the allowed lateness)
        else:
            outcome = None
        if outcome is None:
            st[2] = t
            start = st[0]
            if e["is_in"]:
                if start is None:
                    st[0], st[1] = t, e["scan_id"]
                    rows.append((e["venue_id"], t, t + dwell, CLOSED_BY_DWELL, PROVISIONAL, e["scan_id"]))
                    outcome = "opened"
                elif t <= start + dwell:
                    outcome = "repeat"
                else:
                    rows.append((e["venue_id"], start, start + dwell, CLOSED_BY_NEXT_CHECKIN, FINAL, st[1]))
                    st[0], st[1] = t, e["scan_id"]
                    rows.append((e["venue_id"], t, t + dwell, CLOSED_BY_DWELL, PROVISIONAL, e["scan_id"]))
                    outcome = "opened"
            elif start is None:
                outcome = "unmatched_checkout"
            else:
                rows.append((e["venue_id"], start, t, CLOSED_BY_CHECKOUT, FINAL, st[1]))
                st[0] = None
                outcome = "closed"
        self.outcomes[outcome] += 1
        paired = time.perf_counter()
        self.t["pair"] += paired - started
        now = time.time_ns() // 1000
        self._insert(
            "qrtrace.checkins",
            {
                "scan_id": [e["scan_id"]],
                "venue_id": [e["venue_id"]],
                "person": [e["person"]],
                "direction": [1 if e["is_in"] else -1],
                "event_time_us": [t],
                "offset_minutes": [e["offset_minutes"]],
                "mode": [e["mode"]],
                "scanner_id": [e["scanner_id"]],
                "declaration_sealed": [e["declaration_sealed"]],
                "outcome": [outcome],
                "ingested_at_us": [now],
            },
        )
        for venue, start_us, end_us, closed_by, version, opened_by in rows:
            self._insert(
                "qrtrace.visits_by_venue",
                {
                    "venue_id": [venue],
                    "person": [e["person"]],
                    "start_us": [start_us],
                    "end_us": [end_us],
                    "closed_by": [closed_by],
                    "version": [version],
                    "opened_by": [opened_by],
                },
            )
            self.visits[(venue, e["person"], start_us, opened_by)] = (end_us, closed_by, version)
        if outcome in ("unmatched_checkout", "late"):
            payload = {
                "scan_id": e["scan_id"],
                "venue_id": e["venue_id"],
                "person": e["person"],
                "direction": "in" if e["is_in"] else "out",
                "event_time_us": t,
                "mode": e["mode"],
                "scanner_id": e["scanner_id"],
            }
            self._dead_letter(f"{outcome}:{e['scan_id']}", outcome, outcome, json.dumps(payload), "", now)
        self.released += 1
        self.release_seconds += time.perf_counter() - started

    def _edge_dead_letter(self, line: bytes, record: dict | None, refused: Refused) -> None:
        """A refused line, without raw identifiers: safe fields readable, the original sealed."""
        started = time.perf_counter()
        redacted = {k: record[k] for k in SAFE_FIELDS if k in record} if record else {}
        if record and isinstance(record.get("person_id"), str):
            redacted["person"] = self._pseudonym(record["person_id"])
        sealed = self.vault.seal(line.decode("utf-8", "replace"), "dead-letter")
        dl_id = hashlib.blake2b(line, digest_size=16).hexdigest()
        self.t["dead_letter_prep"] += time.perf_counter() - started
        self._dead_letter(dl_id, refused.reason, refused.detail, json.dumps(redacted), sealed, time.time_ns() // 1000)

    def _dead_letter(self, dl_id: str, reason: str, detail: str, redacted: str, sealed: str, at_us: int) -> None:
        self.dead[reason] += 1
        self._insert(
            "qrtrace.dead_letters",
            {
                "dl_id": [dl_id],
                "received_at_us": [at_us],
                "source": [self.source],
                "reason": [reason],
                "detail": [detail],
                "payload_redacted": [redacted],
                "payload_sealed": [sealed],
            },
        )

    def _insert(self, table: str, row: dict[str, list]) -> None:
        started = time.perf_counter()
        self.store.insert(table, row)
        self.inserts += 1
        self.t["insert"] += time.perf_counter() - started
