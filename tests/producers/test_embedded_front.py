"""The embedded front (the group commit), pure threading with a fake runtime pass: concurrent batches share
passes, every line is stored exactly once, each request gets its own share, and failures, overload and
closing reach every waiting caller."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from qrtrace.errors import InputError, StoreError
from qrtrace.identity import Keyring, Pseudonymiser, Vault
from qrtrace.producers.edge import AdmittedBatch, Edge
from qrtrace.producers.embedded_front import EmbeddedFront
from qrtrace.producers.front import OVERLOADED, SHUTTING_DOWN, STORE, FrontUnavailable, send

KEYS = Keyring.generate()
AT = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
EDGE = Edge(Pseudonymiser(KEYS.pseudonym_key), Vault(KEYS.vault_key), {"V1"})


def line(scan_id: str, direction: str = "in") -> bytes:
    return orjson.dumps({"scan_id": scan_id, "venue_id": "V1", "person_id": f"p-{scan_id}", "direction": direction,
                         "event_time": AT, "mode": "venue_qr", "scanner_id": "S"})  # fmt: skip


def runtime(stored: list[str], hold: Callable[[list[bytes]], None] = lambda lines: None,
            passes: list[int] | None = None) -> Callable[[list[bytes], str], AdmittedBatch]:  # fmt: skip
    """A fake runtime pass: the real (pure) edge's verdict, the scan ids 'stored' after `hold` returns."""

    def store_pass(lines: list[bytes], source: str) -> AdmittedBatch:
        hold(lines)
        admitted = EDGE.admit(lines)
        stored.extend(admitted.checkins.scan_id.tolist())
        if passes is not None:
            passes.append(len(lines))
        return admitted

    return store_pass


def queued(front: EmbeddedFront) -> int:
    return len(front._coalescer._queue)


def wait_until(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds  # bounded
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert condition()


def test_concurrent_batches_share_passes_each_stored_once_each_answered_with_its_own_counts() -> None:
    stored: list[str] = []
    passes: list[int] = []
    in_first, release_first = threading.Event(), threading.Event()

    def hold(lines: list[bytes]) -> None:
        if not passes:
            in_first.set()
            release_first.wait(10)  # the first pass waits until every other batch is queued behind it

    front = EmbeddedFront(runtime(stored, hold, passes))
    answers: dict[int, tuple[int, int]] = {}

    def submit(t: int) -> None:
        lines = [line(f"{t}-{i}") for i in range(5)] + ([line(f"{t}-bad", "sideways")] if t % 2 else [])
        share = send(front, lines, {"V1"}, "api")
        answers[t] = (len(share.checkins), len(share.dead_letters))

    threads = [threading.Thread(target=submit, args=(t,)) for t in range(40)]
    threads[0].start()
    assert in_first.wait(10)
    for th in threads[1:]:
        th.start()
    wait_until(lambda: queued(front) == 39)
    release_first.set()
    for th in threads:
        th.join(timeout=30)
    front.close()
    assert sorted(stored) == sorted(f"{t}-{i}" for t in range(40) for i in range(5))
    assert passes == [5, 5 * 39 + 20]  # the first batch alone, then everyone who queued meanwhile in one pass
    assert answers == {t: (5, t % 2) for t in range(40)}  # each its own share of the shared pass


def test_closing_stores_what_is_queued_and_refuses_what_comes_after() -> None:
    stored: list[str] = []
    gate, in_first = threading.Event(), threading.Event()

    def hold(lines: list[bytes]) -> None:
        in_first.set()
        gate.wait(10)

    front = EmbeddedFront(runtime(stored, hold))
    threads = [threading.Thread(target=send, args=(front, [line(str(i))], {"V1"}, "api")) for i in range(3)]
    threads[0].start()  # the first batch's pass starts alone (started together, two could share a pass)
    assert in_first.wait(10)
    for th in threads[1:]:
        th.start()
    wait_until(lambda: queued(front) == 2)
    closing = threading.Thread(target=front.close)
    closing.start()
    gate.set()
    closing.join(timeout=30)
    for th in threads:
        th.join(timeout=30)
    assert sorted(stored) == ["0", "1", "2"]
    with pytest.raises(FrontUnavailable, match="shutting down") as refused:
        send(front, [line("late")], {"V1"}, "api")
    assert refused.value.cause == SHUTTING_DOWN


def test_a_failed_pass_fails_its_callers_and_the_next_pass_runs() -> None:
    calls: list[list[bytes]] = []
    stored: list[str] = []
    fine = runtime(stored)

    def flaky(lines: list[bytes], source: str) -> AdmittedBatch:
        calls.append(lines)
        if len(calls) == 1:
            raise OSError("the store went away")
        if len(calls) == 2:
            raise InputError("No venues are registered yet.")
        return fine(lines, source)

    front = EmbeddedFront(flaky)
    with pytest.raises(FrontUnavailable, match="send it again") as failed:
        send(front, [line("a")], {"V1"}, "api")
    assert failed.value.cause == STORE and "went away" not in str(failed.value)
    with pytest.raises(InputError, match="No venues"):  # a sentence for the user keeps its type (400)
        send(front, [line("a")], {"V1"}, "api")
    send(front, [line("b")], {"V1"}, "api")
    front.close()
    assert len(calls) == 3 and stored == ["b"]


def test_passes_respect_the_size_limit() -> None:
    stored: list[str] = []
    sizes: list[int] = []
    gate = threading.Event()
    held: list[int] = []
    front = EmbeddedFront(runtime(stored, lambda lines: (held.append(len(lines)), gate.wait(5)), sizes), max_events=10)
    threads = [threading.Thread(target=send, args=(front, [line(f"{t}-{i}") for i in range(4)], {"V1"}, "api"))
               for t in range(6)]  # fmt: skip
    for th in threads:
        th.start()
    wait_until(lambda: front.queued_lines() + sum(held) == 24)  # every batch queued or in the held first pass
    gate.set()
    for th in threads:
        th.join(timeout=30)
    front.close()
    assert sum(sizes) == 24 and max(sizes) <= 10 and len(stored) == 24


def test_one_bad_batch_fails_only_itself_and_store_errors_are_not_shown() -> None:
    """A pass holding a batch the store cannot take is stored again request by request: the other
    scanners' batches are stored, the bad one gets 'send it again' without the database's text."""
    stored: list[str] = []
    gate = threading.Event()
    fine = runtime(stored)

    def store_pass(lines: list[bytes], source: str) -> AdmittedBatch:
        gate.wait(10)
        if any(b"poison" in x for x in lines):
            raise StoreError("The embedded store refused a statement: Code: 252. DB::Exception: Too many partitions")
        return fine(lines, source)

    front = EmbeddedFront(store_pass)
    errors: dict[str, BaseException] = {}

    def submit(name: str) -> None:
        try:
            send(front, [line(name)], {"V1"}, "api")
        except BaseException as exc:
            errors[name] = exc

    blocker = threading.Thread(target=submit, args=("first",))
    blocker.start()
    wait_until(lambda: queued(front) == 0)  # the first pass has taken "first"
    others = [threading.Thread(target=submit, args=(n,)) for n in ("a", "poison", "b")]
    for th in others:
        th.start()
    wait_until(lambda: queued(front) == 3)
    gate.set()
    for th in [blocker, *others]:
        th.join(timeout=30)
    front.close()
    assert sorted(stored) == ["a", "b", "first"]
    assert set(errors) == {"poison"} and isinstance(errors["poison"], FrontUnavailable)
    assert "DB::Exception" not in str(errors["poison"]) and "send it again" in str(errors["poison"])


def test_a_store_that_is_away_is_not_hammered_request_by_request() -> None:
    calls: list[list[bytes]] = []
    gate = threading.Event()

    def away(lines: list[bytes], source: str) -> AdmittedBatch:
        gate.wait(10)
        calls.append(lines)
        raise StoreError("The store went away.")

    front = EmbeddedFront(away)
    errors: list[BaseException] = []

    def submit(name: str) -> None:
        try:
            send(front, [line(name)], {"V1"}, "api")
        except BaseException as exc:
            errors.append(exc)

    first = threading.Thread(target=submit, args=("first",))
    first.start()
    wait_until(lambda: queued(front) == 0)
    rest = [threading.Thread(target=submit, args=(f"r{i}",)) for i in range(5)]
    for th in rest:
        th.start()
    wait_until(lambda: queued(front) == 5)
    gate.set()
    for th in [first, *rest]:
        th.join(timeout=30)
    front.close()
    assert len(errors) == 6 and all(isinstance(e, FrontUnavailable) and e.cause == STORE for e in errors)
    assert len(calls) == 3  # the first pass, the shared pass of five, one lone retry: then it stops


def test_past_its_queue_bound_a_request_is_refused_at_once() -> None:
    """A store that falls behind does not make requests wait for the client's timeout: past the bound
    a batch is refused at once (a 503), and what was queued is still stored."""
    stored: list[str] = []
    gate = threading.Event()
    front = EmbeddedFront(runtime(stored, lambda lines: gate.wait(10)), max_events=10, max_queued_events=10)
    waiting = [threading.Thread(target=send, args=(front, [line(f"q{i}-{j}") for j in range(4)], {"V1"}, "api"))
               for i in range(3)]  # fmt: skip
    waiting[0].start()
    wait_until(lambda: front._coalescer.passes == 0 and queued(front) == 0)
    time.sleep(0.05)  # the writer holds the first batch
    for th in waiting[1:]:
        th.start()
    wait_until(lambda: queued(front) == 2)  # 8 of 10 queued
    started = time.monotonic()
    with pytest.raises(FrontUnavailable, match="nothing of this batch was kept") as refused:
        send(front, [line(f"late-{j}") for j in range(4)], {"V1"}, "api")  # 8 + 4 > 10: refused now
    assert refused.value.cause == OVERLOADED and time.monotonic() - started < 1
    gate.set()
    for th in waiting:
        th.join(timeout=30)
    front.close()
    assert sorted(stored) == sorted(f"q{i}-{j}" for i in range(3) for j in range(4))
