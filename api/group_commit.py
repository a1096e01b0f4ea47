"""Scanner batches that arrive together are stored together.

In embedded mode every pass through the runtime costs about one store insert per table (~20 ms each on
chDB, whatever the row count: measured in benchmarks/api_bench.py), so storing each scanner's request
alone caps a server at ~9 requests/s. A single writer thread takes every request queued while the
previous pass ran and stores them in one pass; each request's caller waits until its pass is stored
(and only then answers 202), so nothing is acknowledged before it is durable.

One bad batch does not fail its neighbours: when a shared pass fails, each of its requests is stored
again in a pass of its own, so only the one that fails alone gets the failure. Only a sentence about
the request itself (`InputError`) reaches its caller; a store's own error becomes "send it again",
never the database's text. A pass that fails leaves at most rows a resend writes again (the keys make
them the same rows), because every refusal of the input itself happens before the first write.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from qrtrace.errors import InputError
from qrtrace.producers.coalesce import take_pass

MAX_EVENTS_PER_PASS = 20_000
# Past this many check-ins waiting, a new request is refused at once: at ~4 passes behind, its answer
# would come too late to be worth waiting for (a scanner retries after Retry-After).
MAX_QUEUED_EVENTS = 4 * MAX_EVENTS_PER_PASS


class CommitTimeout(Exception):
    """The pass did not finish in time; the caller should retry (retries are deduplicated by scan_id)."""


class Overloaded(CommitTimeout):
    """More is queued than the writer can store in a few passes: refused at once (503), never left waiting
    until the client's own timeout; nothing of it was kept."""


class CommitFailed(Exception):
    """Storing the pass failed (the store is away or refused it); nothing is acknowledged, send it again."""


@dataclass
class _Pending:
    lines: Sequence[bytes]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class GroupCommit:
    """One writer thread; `submit` blocks until the lines are stored (or raises what storing raised)."""

    def __init__(
        self,
        store_lines: Callable[[list[bytes]], None],
        max_events: int = MAX_EVENTS_PER_PASS,
        max_queued_events: int = MAX_QUEUED_EVENTS,
    ) -> None:
        self._store_lines = store_lines
        self._max_events = max_events
        self._max_queued = max_queued_events
        self._queued_events = 0
        self._queue: list[_Pending] = []
        self._cond = threading.Condition()
        self._stopping = False
        self.passes = 0
        self._thread = threading.Thread(target=self._run, name="qrtrace-group-commit", daemon=True)
        self._thread.start()

    def submit(self, lines: Sequence[bytes], timeout_s: float = 60.0) -> None:
        pending = _Pending(lines)
        with self._cond:
            if self._stopping:
                raise CommitTimeout("The server is shutting down; send the batch again.")
            if self._queue and self._queued_events + len(lines) > self._max_queued:
                raise Overloaded("The server has more check-ins waiting than it can store soon; nothing of this "
                                 "batch was kept, send it again in a moment.")  # fmt: skip
            self._queued_events += len(lines)
            self._queue.append(pending)
            self._cond.notify()
        if not pending.done.wait(timeout_s):
            raise CommitTimeout("The store did not confirm the batch in time; send it again (nothing is doubled).")
        if pending.error is not None:
            # Each waiting caller gets an exception of its own (one object raised in several threads
            # would mix their tracebacks); a sentence meant for users keeps its type.
            err = pending.error
            if isinstance(err, InputError):
                raise type(err)(str(err)) from err
            raise CommitFailed("The store could not save this batch; nothing was acknowledged, send it again.") from err

    def close(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout=60)

    def _take(self) -> list[_Pending] | None:
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            if not self._queue:
                return None
            taken, events = take_pass(self._queue, self._max_events)
            self._queued_events -= events
            return taken

    def _run(self) -> None:
        while (taken := self._take()) is not None:
            try:
                self._store(taken)
            finally:
                for p in taken:
                    p.done.set()

    def _store(self, taken: list[_Pending]) -> None:
        try:
            self._store_lines([line for p in taken for line in p.lines])
            self.passes += 1
            return
        except BaseException as exc:  # every waiting caller gets an answer, never a hang
            shared = exc
            if len(taken) == 1:
                taken[0].error = exc
                return
        # Isolate: each request of the failed pass alone, so one bad batch fails only itself. If the first
        # one fails the same way, the store is away (not one batch's fault): the rest get that answer now
        # instead of N more passes against a store that is down.
        for i, p in enumerate(taken):
            try:
                self._store_lines(list(p.lines))
                self.passes += 1
            except BaseException as exc:
                p.error = exc
                if i == 0 and type(exc) is type(shared):
                    for rest in taken[1:]:
                        rest.error = shared
                    return
