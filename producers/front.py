"""The scanners' way in behind the HTTP front door: one small interface, two implementations.

The front door (`api/scanner_door.py`) authenticates a request and checks its shape; what happens to its
check-ins next depends on the deployment, and is one of:

- `EmbeddedFront` (`producers/embedded_front.py`): the group commit into the embedded runtime: the
  requests waiting while the previous pass was stored go through edge -> processors -> store in one pass.
- `KafkaFront` (`producers/kafka_front.py`): one long-lived edge and producer per process; the requests
  arriving within 25 ms go through one edge pass and one produce (bundles of many scans).

Both gather concurrent requests with the same `Coalescer` (one thread runs the passes, because the edge
and the runtime are not thread-safe and their fixed cost per call dominates single-scan requests), and
both answer each request with its own `Share` of the pass once that share is durable (stored, or
acknowledged by Kafka). A request that cannot be kept fails with `FrontUnavailable` and a cause; the
door turns that into a 503 with Retry-After ("nothing was kept, send it again": scan_id makes resends safe).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias

from qrtrace.metrics import FRONT_QUEUED
from qrtrace.producers.coalesce import Share, take_pass

log = logging.getLogger("qrtrace.front")

# Why a request was answered 503 (a label of the front door's metrics and the operations page).
OVERLOADED = "overloaded"  # more check-ins waiting than the front can keep soon
KAFKA = "kafka"  # the broker is away, refused or did not acknowledge in time
STORE = "store"  # the store is away or refused the pass
TIMEOUT = "timeout"  # no answer within the request's time limit
SHUTTING_DOWN = "shutting_down"
TOKEN_FILE = "token_file"  # the server cannot read its token file (answered by the door itself)
CAUSES = (OVERLOADED, KAFKA, STORE, TIMEOUT, SHUTTING_DOWN, TOKEN_FILE)


class FrontUnavailable(Exception):
    """Nothing of the request is confirmed as kept: answer 503 with Retry-After; a resend is safe."""

    def __init__(self, message: str, cause: str, retry_after_s: int = 2) -> None:
        super().__init__(message)
        self.cause = cause
        self.retry_after_s = retry_after_s


# What a request waits on: an asyncio future of the scanner door's event loop (settled for a whole pass with
# one wake-up of that loop), or a concurrent future for a thread (tests, blocking callers).
Waiting: TypeAlias = "asyncio.Future[Share] | Future[Share]"


class ScannerFront(Protocol):
    """Where the front door hands a request's check-ins (JSON lines, already shape-checked)."""

    kind: str  # "embedded" or "kafka": what a 202 means (stored, or acknowledged by Kafka)
    answer_timeout_s: float  # how long a request may wait for its share before it is answered 503

    def submit(self, lines: list[bytes], venue_ids: Collection[str], source: str,
               future: Waiting | None = None) -> Waiting:  # fmt: skip
        """Queue the request; `future` (a new concurrent one if None) gets its share once durable, or
        FrontUnavailable / InputError. Raises FrontUnavailable at once when past capacity or closed."""
        ...

    def withdraw(self, future: Waiting) -> bool:
        """Take a request that is still waiting for its pass out of the queue (its caller gave up)."""
        ...

    def queued_lines(self) -> int:
        """Check-ins waiting for a pass (the queue depth the operations page shows)."""
        ...

    def venues_changed(self) -> None:
        """A venue was registered through this process: the next pass reads the registry again."""
        ...

    def close(self) -> None:
        """Finish (bounded) what is under way; later requests are answered 503."""
        ...


def send(front: ScannerFront, lines: list[bytes], venue_ids: Collection[str], source: str) -> Share:
    """Blocking form of `submit` for threads (tests and the CLI): the share, or FrontUnavailable."""
    future = front.submit(lines, venue_ids, source)
    assert isinstance(future, Future)
    try:
        return future.result(front.answer_timeout_s)
    except FutureTimeout:
        front.withdraw(future)
        raise FrontUnavailable(f"The batch was not confirmed within {front.answer_timeout_s:g} s; send it again.",
                               TIMEOUT) from None  # fmt: skip


@dataclass(eq=False, slots=True)
class Pending:
    """One request waiting for its pass."""

    lines: list[bytes]
    source: str
    venue_ids: Collection[str]  # the venues its check-ins name (the Kafka front checks its registry cache)
    future: Waiting
    arrived: float = field(default_factory=time.monotonic)


def by_source(taken: Sequence[Pending]) -> dict[str, list[Pending]]:
    """A pass's requests grouped by source, in arrival order (each source is one edge pass: its dead letters
    and produced messages carry it)."""
    groups: dict[str, list[Pending]] = {}
    for p in taken:
        groups.setdefault(p.source, []).append(p)
    return groups


Outcome: TypeAlias = "Share | BaseException"


def settle(pending: Sequence[Pending], outcomes: Sequence[Outcome]) -> None:
    """Give each request its outcome (a share or the exception to raise). The asyncio futures of one event
    loop are settled by one callback on that loop (one wake-up per pass, not per request); a future already
    done (its caller gave up) is left as it is."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Share], Outcome]]] = {}
    for p, outcome in zip(pending, outcomes, strict=True):
        future = p.future
        if isinstance(future, asyncio.Future):
            by_loop.setdefault(future.get_loop(), []).append((future, outcome))
            continue
        try:
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        except InvalidStateError:
            pass
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(_settle_on_loop, items)


def _settle_on_loop(items: list[tuple[asyncio.Future[Share], Outcome]]) -> None:
    for future, outcome in items:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def fail(pending: Sequence[Pending], exc: FrontUnavailable) -> None:
    """The same refusal for each request, each its own exception object (one object raised in many threads
    mixes their tracebacks)."""
    settle(pending, [FrontUnavailable(str(exc), exc.cause, exc.retry_after_s) for _ in pending])


class Coalescer:
    """Concurrent requests gathered into passes, run one at a time by one thread.

    `run_pass(taken)` settles (`settle`) every request it is given (a share or an exception), now or
    later (Kafka settles them from its delivery reports); if it raises, the requests it left unsettled are
    answered "send it again". A pass starts `linger_s` after its first request arrived (0: as soon as the
    thread is free, so the requests that arrive while a pass runs form the next one), or at once when
    `max_pass_lines` wait. Past `max_queued_lines` waiting, a request is refused at once (503): at that
    depth its answer would come too late to be worth waiting for.
    """

    def __init__(self, name: str, run_pass: Callable[[list[Pending]], None], *, linger_s: float,
                 max_pass_lines: int, max_queued_lines: int) -> None:  # fmt: skip
        self._name = name
        self._run_pass = run_pass
        self._linger_s = linger_s
        self._max_pass = max_pass_lines
        self._max_queued = max_queued_lines
        self._cond = threading.Condition()
        self._queue: list[Pending] = []
        self._queued = 0
        self._closed = False
        self._thread: threading.Thread | None = None  # started by the first request
        self.passes = 0

    def submit(self, lines: list[bytes], source: str, venue_ids: Collection[str] = (),
               future: Waiting | None = None) -> Waiting:  # fmt: skip
        pending = Pending(lines, source, venue_ids, future if future is not None else Future())
        with self._cond:
            if self._closed:
                raise FrontUnavailable("The server is shutting down; send the batch again.", SHUTTING_DOWN)
            if self._queue and self._queued + len(lines) > self._max_queued:
                raise FrontUnavailable("The server has more check-ins waiting than it can keep soon; nothing of "
                                       "this batch was kept, send it again in a moment.", OVERLOADED)  # fmt: skip
            self._queue.append(pending)
            self._queued += len(lines)
            FRONT_QUEUED.set(self._queued)  # summed over --workers (the gauge's multiprocess mode: livesum)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify_all()
        return pending.future

    def withdraw(self, future: Waiting) -> bool:
        with self._cond:
            for i, p in enumerate(self._queue):
                if p.future is future:
                    del self._queue[i]
                    self._queued -= len(p.lines)
                    FRONT_QUEUED.set(self._queued)
                    return True
        return False

    def queued_lines(self) -> int:
        return self._queued

    def close(self, timeout_s: float = 60.0) -> None:
        """Refuse new requests and run (bounded by `timeout_s`) the passes of those already queued."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=timeout_s)

    def _take(self) -> list[Pending] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None  # closed, and everything queued before it was taken
            deadline = self._queue[0].arrived + self._linger_s
            while not self._closed and self._queued < self._max_pass:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            taken, n = take_pass(self._queue, self._max_pass)
            self._queued -= n
            FRONT_QUEUED.set(self._queued)
            return taken

    def _run(self) -> None:
        while (taken := self._take()) is not None:
            try:
                self._run_pass(taken)
                self.passes += 1
            except BaseException:  # every waiting caller gets an answer, never a hang (a settled one keeps its own)
                log.exception("a %s pass failed", self._name)
                fail(taken, FrontUnavailable("The batch could not be kept; send it again shortly.", STORE))
        with self._cond:
            left, self._queue, self._queued = self._queue, [], 0
        fail(left, FrontUnavailable("The server is shutting down; send the batch again.", SHUTTING_DOWN))
