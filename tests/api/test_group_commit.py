"""The group commit (pure threading, no store): concurrent batches share passes, every line is stored
exactly once, failures and timeouts reach every waiting caller."""

from __future__ import annotations

import threading
import time

import pytest

from qrtrace.api.group_commit import CommitFailed, CommitTimeout, GroupCommit, Overloaded
from qrtrace.errors import InputError, StoreError


def test_concurrent_batches_share_passes_and_each_line_is_stored_once() -> None:
    stored: list[bytes] = []
    passes: list[int] = []
    in_first_pass = threading.Event()
    first_pass = threading.Event()

    def store(lines: list[bytes]) -> None:
        if not passes:
            in_first_pass.set()
            first_pass.wait(10)  # hold the first pass until every other batch is queued behind it
        stored.extend(lines)
        passes.append(len(lines))

    commit = GroupCommit(store)
    threads = [threading.Thread(target=commit.submit, args=([f"{t}-{i}".encode() for i in range(5)],))
               for t in range(40)]  # fmt: skip
    threads[0].start()
    assert in_first_pass.wait(10)  # the writer holds the first batch alone (a loaded machine cannot reorder this)
    for th in threads[1:]:
        th.start()
    deadline = time.monotonic() + 20
    while len(commit._queue) < 39 and time.monotonic() < deadline:  # bounded: the other 39 queue up
        time.sleep(0.01)
    queued = len(commit._queue)
    first_pass.set()
    for th in threads:
        th.join(timeout=30)
    assert not any(th.is_alive() for th in threads)
    commit.close()
    assert sorted(stored) == sorted(f"{t}-{i}".encode() for t in range(40) for i in range(5))
    assert queued == 39
    assert passes == [5, 195]  # the first batch alone, then everyone who queued meanwhile in one pass


def test_closing_stores_what_is_queued() -> None:
    stored: list[bytes] = []
    gate = threading.Event()
    commit = GroupCommit(lambda lines: (gate.wait(10), stored.extend(lines)))
    threads = [threading.Thread(target=commit.submit, args=([f"{i}".encode()],)) for i in range(3)]
    for th in threads:
        th.start()
    time.sleep(0.1)
    closing = threading.Thread(target=commit.close)
    closing.start()
    gate.set()
    closing.join(timeout=30)
    for th in threads:
        th.join(timeout=30)
    assert sorted(stored) == [b"0", b"1", b"2"]


def test_a_failed_pass_fails_its_callers_and_the_next_pass_runs() -> None:
    calls = []

    def flaky(lines: list[bytes]) -> None:
        calls.append(lines)
        if len(calls) == 1:
            raise OSError("the store went away")
        if len(calls) == 2:
            raise InputError("No venues are registered yet.")

    commit = GroupCommit(flaky)
    with pytest.raises(CommitFailed, match="send it again") as failed:
        commit.submit([b"a"])
    assert isinstance(failed.value.__cause__, OSError)
    with pytest.raises(InputError, match="No venues"):  # a sentence for the user keeps its type (400)
        commit.submit([b"a"])
    commit.submit([b"b"])
    commit.close()
    assert calls == [[b"a"], [b"a"], [b"b"]]


def test_a_pass_that_takes_too_long_asks_for_a_retry() -> None:
    release = threading.Event()
    commit = GroupCommit(lambda lines: release.wait(5))
    with pytest.raises(CommitTimeout, match="send it again"):
        commit.submit([b"x"], timeout_s=0.1)
    release.set()
    commit.close()
    with pytest.raises(CommitTimeout, match="shutting down"):
        commit.submit([b"y"])


def test_passes_respect_the_size_limit() -> None:
    sizes: list[int] = []
    gate = threading.Event()

    def store(lines: list[bytes]) -> None:
        gate.wait(5)
        sizes.append(len(lines))

    commit = GroupCommit(store, max_events=10)
    threads = [threading.Thread(target=commit.submit, args=([b"x"] * 4,)) for _ in range(6)]
    for th in threads:
        th.start()
    time.sleep(0.2)
    gate.set()
    for th in threads:
        th.join(timeout=30)
    commit.close()
    assert sum(sizes) == 24 and max(sizes) <= 10


def test_one_bad_batch_fails_only_itself_and_store_errors_are_not_shown() -> None:
    """A pass holding a batch the store cannot take is stored again request by request: the other
    scanners' batches are stored, the bad one gets 'send it again' without the database's text."""
    stored: list[bytes] = []
    gate = threading.Event()

    def store(lines: list[bytes]) -> None:
        gate.wait(10)
        if b"poison" in lines:
            raise StoreError("The embedded store refused a statement: Code: 252. DB::Exception: Too many partitions")
        stored.extend(lines)

    commit = GroupCommit(store)
    errors: dict[str, BaseException] = {}

    def send(name: str) -> None:
        try:
            commit.submit([name.encode()])
        except BaseException as exc:
            errors[name] = exc

    blocker = threading.Thread(target=send, args=("first",))
    blocker.start()
    deadline = time.monotonic() + 10
    while commit._queue and time.monotonic() < deadline:  # bounded: the first pass has taken "first"
        time.sleep(0.01)
    others = [threading.Thread(target=send, args=(n,)) for n in ("a", "poison", "b")]
    for th in others:
        th.start()
    while len(commit._queue) < 3 and time.monotonic() < deadline:  # bounded: the three queue up behind it
        time.sleep(0.01)
    gate.set()
    for th in [blocker, *others]:
        th.join(timeout=30)
    commit.close()
    assert sorted(stored) == [b"a", b"b", b"first"]
    assert set(errors) == {"poison"}
    assert isinstance(errors["poison"], CommitFailed)
    assert "DB::Exception" not in str(errors["poison"]) and "send it again" in str(errors["poison"])


def test_a_store_that_is_away_is_not_hammered_request_by_request() -> None:
    calls: list[list[bytes]] = []
    gate = threading.Event()

    def away(lines: list[bytes]) -> None:
        gate.wait(10)
        calls.append(lines)
        raise StoreError("The store went away.")

    commit = GroupCommit(away)
    errors: list[BaseException] = []

    def send(name: str) -> None:
        try:
            commit.submit([name.encode()])
        except BaseException as exc:
            errors.append(exc)

    first = threading.Thread(target=send, args=("first",))
    first.start()
    deadline = time.monotonic() + 10
    while commit._queue and time.monotonic() < deadline:  # bounded
        time.sleep(0.01)
    rest = [threading.Thread(target=send, args=(f"r{i}",)) for i in range(5)]
    for th in rest:
        th.start()
    while len(commit._queue) < 5 and time.monotonic() < deadline:  # bounded
        time.sleep(0.01)
    gate.set()
    for th in [first, *rest]:
        th.join(timeout=30)
    commit.close()
    assert len(errors) == 6 and all(isinstance(e, CommitFailed) for e in errors)
    assert len(calls) == 3  # the first pass, the shared pass of five, one lone retry: then it stops


def test_past_its_queue_bound_a_request_is_refused_at_once() -> None:
    """A store that falls behind does not make requests wait for the client's timeout: past the bound
    a batch is refused at once (Overloaded: a 503), and what was queued is still stored."""
    stored: list[bytes] = []
    gate = threading.Event()
    commit = GroupCommit(lambda lines: (gate.wait(10), stored.extend(lines)), max_events=10, max_queued_events=10)
    waiting = [threading.Thread(target=commit.submit, args=([f"q{i}".encode()] * 4,)) for i in range(3)]
    waiting[0].start()
    deadline = time.monotonic() + 10
    while commit._queue and time.monotonic() < deadline:  # bounded: the writer holds the first batch
        time.sleep(0.01)
    for th in waiting[1:]:
        th.start()
    while len(commit._queue) < 2 and time.monotonic() < deadline:  # bounded: 8 of 10 queued
        time.sleep(0.01)
    with pytest.raises(Overloaded, match="nothing of this batch was kept"):
        commit.submit([b"late"] * 4, timeout_s=30)  # 8 + 4 > 10: refused now, not after 30 s
    gate.set()
    for th in waiting:
        th.join(timeout=30)
    commit.close()
    assert sorted(stored) == sorted([f"q{i}".encode() for i in range(3) for _ in range(4)])
