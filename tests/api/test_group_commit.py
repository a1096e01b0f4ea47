"""The group commit (pure threading, no store): concurrent batches share passes, every line is stored
exactly once, failures and timeouts reach every waiting caller."""

from __future__ import annotations

import threading
import time

import pytest

from qrtrace.api.group_commit import CommitTimeout, GroupCommit


def test_concurrent_batches_share_passes_and_each_line_is_stored_once() -> None:
    stored: list[bytes] = []
    passes: list[int] = []

    def slow_store(lines: list[bytes]) -> None:
        time.sleep(0.02)  # a store pass costs time whatever its size: that is why grouping pays
        stored.extend(lines)
        passes.append(len(lines))

    commit = GroupCommit(slow_store)
    threads = [threading.Thread(target=commit.submit, args=([f"{t}-{i}".encode() for i in range(5)],))
               for t in range(40)]  # fmt: skip
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    commit.close()
    assert sorted(stored) == sorted(f"{t}-{i}".encode() for t in range(40) for i in range(5))
    assert len(passes) < 40 and max(passes) > 5  # batches were grouped


def test_a_failed_pass_fails_its_callers_and_the_next_pass_runs() -> None:
    calls = []

    def flaky(lines: list[bytes]) -> None:
        calls.append(lines)
        if len(calls) == 1:
            raise OSError("the store went away")

    commit = GroupCommit(flaky)
    with pytest.raises(OSError, match="went away"):
        commit.submit([b"a"])
    commit.submit([b"b"])
    commit.close()
    assert calls == [[b"a"], [b"b"]]


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
