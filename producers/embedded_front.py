"""The embedded front: scanner requests that arrive together are stored together (the group commit).

In embedded mode every pass through the runtime costs about one store insert per table (~20 ms each on
chDB, whatever the row count: measured in benchmarks/api_bench.py), so storing each scanner's request
alone caps a server at a few dozen requests/s. One thread takes every request queued while the previous
pass ran and stores them in one pass (edge -> processors -> store); each request is answered with its own
share of that pass's edge verdict once the pass is stored, so nothing is acknowledged before it is durable,
and the edge runs once per check-in (the verdict is the stored pass's, not a second validation).

One bad batch does not fail its neighbours: when a shared pass fails, each of its requests is stored
again in a pass of its own, so only the one that fails alone gets the failure. Only a sentence about the
request itself (`InputError`) reaches its caller; a store's own error becomes "send it again", never the
database's text. A pass that fails leaves at most rows a resend writes again (the keys make them the same
rows), because every refusal of the input itself happens before the first write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection

from qrtrace.errors import InputError
from qrtrace.producers.coalesce import split_admitted
from qrtrace.producers.edge import AdmittedBatch
from qrtrace.producers.front import STORE, Coalescer, FrontUnavailable, Pending, Waiting, by_source, settle

log = logging.getLogger("qrtrace.front")

MAX_EVENTS_PER_PASS = 20_000
# Past this many check-ins waiting, a new request is refused at once: a couple of passes behind, its answer
# would come too late to be worth waiting for (a scanner retries after Retry-After). Settings.front_queue_checkins.
MAX_QUEUED_EVENTS = 40_000
ANSWER_TIMEOUT_S = 60.0


class EmbeddedFront:
    """Scanner requests through the embedded runtime, one pass for all that wait (thread-safe)."""

    kind = "embedded"
    answer_timeout_s = ANSWER_TIMEOUT_S

    def __init__(self, store_pass: Callable[[list[bytes], str], AdmittedBatch], *,
                 max_events: int = MAX_EVENTS_PER_PASS, max_queued_events: int = MAX_QUEUED_EVENTS,
                 on_registry_change: Callable[[], None] | None = None) -> None:  # fmt: skip
        """`store_pass(lines, source)` runs one pass through the runtime and returns its edge verdict;
        `on_registry_change` tells the runtime to read the venue registry again."""
        self._store_pass = store_pass
        self._on_registry_change = on_registry_change
        self._coalescer = Coalescer("qrtrace-group-commit", self._pass, linger_s=0.0, max_pass_lines=max_events,
                                    max_queued_lines=max_queued_events)  # fmt: skip

    @property
    def passes(self) -> int:
        return self._coalescer.passes

    def submit(self, lines: list[bytes], venue_ids: Collection[str], source: str,
               future: Waiting | None = None) -> Waiting:  # fmt: skip
        return self._coalescer.submit(lines, source, venue_ids, future)

    def withdraw(self, future: Waiting) -> bool:
        return self._coalescer.withdraw(future)

    def queued_lines(self) -> int:
        return self._coalescer.queued_lines()

    def venues_changed(self) -> None:
        if self._on_registry_change is not None:
            self._on_registry_change()

    def close(self) -> None:
        self._coalescer.close()

    def _pass(self, taken: list[Pending]) -> None:
        for source, group in by_source(taken).items():
            self._store_group(group, source)

    def _store_group(self, group: list[Pending], source: str) -> None:
        try:
            self._settle(group, self._store_pass([line for p in group for line in p.lines], source))
            return
        except BaseException as exc:  # every waiting caller gets an answer, never a hang
            shared = exc
            if len(group) == 1:
                settle(group, [_answer(exc)])
                return
        # Isolate: each request of the failed pass alone, so one bad batch fails only itself. If the first
        # one fails the same way, the store is away (not one batch's fault): the rest get that answer now
        # instead of N more passes against a store that is down.
        for i, p in enumerate(group):
            try:
                self._settle([p], self._store_pass(list(p.lines), source))
            except BaseException as exc:
                settle([p], [_answer(exc)])
                if i == 0 and type(exc) is type(shared):
                    settle(group[1:], [_answer(shared) for _ in group[1:]])
                    return

    @staticmethod
    def _settle(group: list[Pending], admitted: AdmittedBatch) -> None:
        settle(group, split_admitted(admitted, [len(p.lines) for p in group]))


def _answer(exc: BaseException) -> Exception:
    """What a caller is told: a sentence about its own input, or "send it again" (the store's own text is
    for the operator's log). A fresh exception per caller: one object raised in several threads mixes
    their tracebacks."""
    if isinstance(exc, InputError):
        return type(exc)(str(exc))
    log.warning("a scanner pass was not stored: %r", exc)
    return FrontUnavailable("The store could not save this batch; nothing was acknowledged, send it again.", STORE)
