"""Notifications end to end (issue 14, item 4): the real CLI as subprocesses over a chDB store, a local
webhook receiver as a subprocess, kills by pid."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.conftest import REPO, qrtrace_bin

pytestmark = pytest.mark.embedded

RECEIVER = REPO / "tests" / "notify_receiver.py"
WORKERS = 4


def _env(store: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "QRTRACE_NOW"}
    return {**env, "QRTRACE_STORE": str(store), "COLUMNS": "200", "QRTRACE_ACTOR": "epi-test",
            "QRTRACE_NOTIFY_WORKERS": str(WORKERS), **extra}  # fmt: skip


def _helper(*args: str, env: dict[str, str]) -> dict:
    proc = subprocess.run([sys.executable, "-m", "tests.embedded.notify_store", *args], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=600, check=True)  # fmt: skip
    return orjson.loads(proc.stdout.strip().splitlines()[-1])


def _qrtrace(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([qrtrace_bin(), *args], capture_output=True, text=True, env=env, timeout=timeout)
    assert proc.returncode == 0, f"qrtrace {' '.join(args)} failed ({proc.returncode}): {proc.stderr}"
    return proc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_receiver(port: int, record: Path, fail_every: int = 3, delay_ms: float = 5) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(RECEIVER), "--port", str(port), "--record", str(record),
                             "--fail-every", str(fail_every), "--delay-ms", str(delay_ms), "--max-seconds", "300"],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _records(record: Path) -> list[dict]:
    if not record.exists():
        return []
    return [orjson.loads(line) for line in record.read_bytes().splitlines() if line.endswith(b"}")]


def _wait_for(record: Path, accepted: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while len({r["key"] for r in _records(record)}) < accepted:
        assert time.monotonic() < deadline, f"the receiver did not accept {accepted} messages in {timeout_s} s"
        time.sleep(0.02)


def test_exactly_once_through_kills_of_the_sender_and_the_receiver(tmp_path: Path) -> None:
    """Every message delivered once, whatever is killed.

    A simulated district (every person with a phone). The receiver fails every third request with 500, is
    SIGKILLed after a quarter of the messages and restarted on the same port; the sender (`qrtrace notify`)
    is SIGKILLed half-way, then `qrtrace notifications send` resumes, and a third run must send nothing.

    What is measured, honestly: the receiver accepts a message once per Idempotency-Key (as a provider that
    honours the header does) and records every POST that reached acceptance, repeats included. So "accepted
    twice" cannot happen by construction; what the test counts and bounds is the raw re-POSTs of a key
    already accepted. They come from two windows only: the sender killed after a 2xx arrived but before its
    journal line was written (at most one in-flight message per connection), and the receiver killed after
    recording a message but before answering (ditto). Hence at most 2 x WORKERS; the number is printed."""
    store = tmp_path / "store"
    env = _env(store)
    case = _helper("simulated", str(store), "3000", env=env)
    port, record = _free_port(), tmp_path / "accepted.jsonl"
    gateway = f"webhook:http://127.0.0.1:{port}/sms"
    purpose = "F1 notification, outbreak 2026-12"
    receiver = _start_receiver(port, record)
    sender = None
    try:
        sender = subprocess.Popen([qrtrace_bin(), "notify", case["person_id"], "--from", case["from"], "--to",
                                   case["to"], "--until", case["until"], "--purpose", purpose, "--gateway", gateway,
                                   "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        _wait_for(record, 100)
        _kill(receiver)  # the provider goes away mid-run: connections refused, retried with back-off
        time.sleep(0.7)
        receiver = _start_receiver(port, record)
        _wait_for(record, 250)
        assert sender.poll() is None, "the first sender finished before it could be killed: slow the receiver"
        _kill(sender)
        assert sender.returncode == -signal.SIGKILL
        second = orjson.loads(_qrtrace("notifications", "send", "--purpose", purpose, "--gateway", gateway,
                                       "--json", env=env).stdout)  # fmt: skip
        third = orjson.loads(_qrtrace("notifications", "send", "--purpose", purpose, "--gateway", gateway,
                                      "--json", env=env).stdout)  # fmt: skip
    finally:
        _kill(receiver)
        if sender is not None:
            _kill(sender)
    found = _helper("inspect", str(store), env=env)
    ids = set(found["ids"])
    rows = _records(record)
    assert len(ids) > 300
    assert all(r["message_id"] == r["key"] for r in rows)  # Idempotency-Key = message id on every POST
    assert {r["key"] for r in rows} == ids  # every message delivered, nothing else
    first_acceptances = [r for r in rows if not r["repeat"]]
    assert len(first_acceptances) == len(ids)  # each accepted once
    reposts = len(rows) - len(first_acceptances)
    print(f"\n{len(ids)} messages, {reposts} raw re-POSTs of an already accepted key")
    assert reposts <= 2 * WORKERS
    assert second["queued"] == 0 and second["failed"] == 0 and second["sent"] == len(ids)
    assert second["sent_now"] > 0 and second["replayed"] > 0  # the journal carried what the killed run sent
    assert third["sent_now"] == 0 and third["failed_now"] == 0 and third["sent"] == len(ids)
    audit = found["audit"]
    assert audit and all(e["purpose"] == purpose and e["actor"] == "epi-test" for e in audit)
    assert sum(e["detail"]["opened"] for e in audit) >= len(ids)  # every number opened was audited
    assert all(e["detail"]["gateway"] == "webhook" for e in audit)


def test_file_gateway_run_twice_writes_each_message_once(tmp_path: Path) -> None:
    """The worked example: two runs into one file, each message once; a contact without a phone fails with
    its reason; the texts are in Vietnamese (and English with --lang en) and name no pseudonym."""
    store = tmp_path / "store"
    env = _env(store, QRTRACE_NOW="2021-07-25T12:00:00+07:00")
    case = _helper("small-wave", str(store), env=env)
    out = tmp_path / "office" / "to-send.jsonl"
    args = ("notify", case["person_id"], "--from", case["from"], "--to", case["to"], "--until", case["until"],
            "--purpose", "hand delivery by the district office", "--gateway", f"file:{out}", "--json")  # fmt: skip
    first = orjson.loads(_qrtrace(*args, env=env).stdout)
    second = orjson.loads(_qrtrace(*args, env=env).stdout)
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert first == {**second, "new": first["new"]} and second["new"] == 0
    assert first["messages"] == 21 and first["sent"] == 20 and first["failed"] == 1  # one contact has no phone
    assert len(lines) == 20 == len({m["message_id"] for m in lines})
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert all(m["text"].startswith("Thông báo y tế") and "Trạm Y tế Sơn Dương" in m["text"] for m in lines)
    assert all(m["to"].startswith("09") and len(m["to"]) == 10 for m in lines)
    status = orjson.loads(_qrtrace("notifications", "status", "--json", env=env).stdout)
    assert status["counts"] == {"queued": 0, "sent": 20, "failed": 1}
    assert status["reasons"] == {"no phone number": 1}
    # Another gateway, same messages: nothing is sent again (the outbox keeps one message per id).
    again = orjson.loads(_qrtrace(*args[:-3], "--gateway", f"file:{tmp_path / 'other.jsonl'}", "--json",
                                  env=env).stdout)  # fmt: skip
    assert again["sent"] == 20 and not (tmp_path / "other.jsonl").read_bytes()


def test_a_bad_gateway_is_one_sentence(tmp_path: Path) -> None:
    store = tmp_path / "store"
    env = _env(store, QRTRACE_NOW="2021-07-25T12:00:00+07:00", QRTRACE_LANG="en")
    proc = subprocess.run([qrtrace_bin(), "notifications", "send", "--purpose", "resume sending", "--gateway",
                           "ftp://x"], capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "Unknown gateway" in proc.stderr


def test_tier_close_notifies_exactly_the_close_contacts(tmp_path: Path) -> None:
    """`--tier close`: one message per close contact of the trace (by the default rule set), none to the
    casual ones; each message says its tier."""
    store = tmp_path / "store"
    env = _env(store, QRTRACE_NOW="2021-07-25T12:00:00+07:00")
    case = _helper("small-wave", str(store), env=env)
    window = ("--from", case["from"], "--to", case["to"], "--until", case["until"])
    traced = orjson.loads(_qrtrace("trace", case["person_id"], *window, "--json", env=env).stdout)
    close = [c for c in traced["contacts"] if c["risk"] == "close"]
    assert traced["rule"]["name"] == "qrtrace-2026" and 0 < len(close) < len(traced["contacts"])
    out = tmp_path / "close.jsonl"
    args = ("notify", case["person_id"], *window, "--tier", "close", "--purpose", "close contacts first",
            "--gateway", f"file:{out}", "--json")
    counts = orjson.loads(_qrtrace(*args, env=env).stdout)
    assert counts["messages"] == len(close)
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(lines) == counts["sent"] and all(m["tier"] == "close" for m in lines)
