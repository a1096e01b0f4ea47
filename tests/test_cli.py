"""The command line's error contract (issue: the house in order, item 1). A mistyped command or option gets
typer's usage message and exit code 2; qrtrace's own errors stay one sentence and exit 1; anything else is
one sentence and exit 70, never a traceback. No store is opened: every case fails before one is needed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from qrtrace import cli
from tests.conftest import qrtrace_bin


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "100", "QRTRACE_LANG": "en"}
    return subprocess.run([qrtrace_bin(), *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("trace", "--rules", "x"), "No such option: --rules"),
        (("tracee",), "No such command 'tracee'"),
        (("trace", "--depth", "9"), "Invalid value for '--depth'"),
        (("tokens", "issue", "--name", "x"), "Missing option '--role'"),
    ],
)
def test_usage_errors_get_the_usage_message_and_exit_2(args: tuple[str, ...], fragment: str) -> None:
    proc = _run(*args)
    assert proc.returncode == 2, proc.stderr
    assert fragment in proc.stderr
    assert "Usage: qrtrace" in proc.stderr and "--help' for help." in proc.stderr
    assert "Unexpected failure" not in proc.stderr and "Traceback" not in proc.stderr


def test_no_command_prints_the_help_not_a_failure() -> None:
    proc = _run()
    assert proc.returncode == 2 and "Usage: qrtrace" in proc.stdout and "trace" in proc.stdout
    assert "Unexpected failure" not in proc.stderr


def test_help_exits_0() -> None:
    proc = _run("trace", "--help")
    assert proc.returncode == 0 and "--from" in proc.stdout and not proc.stderr


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("trace",), "Give the case's PERSON_ID with --from and --to"),
        (("report", "coverage", "--lang", "fr"), "--lang must be vi or en"),
    ],
)
def test_qrtrace_errors_stay_one_sentence_and_exit_1(args: tuple[str, ...], fragment: str) -> None:
    proc = _run(*args)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [proc.stderr.strip()] and proc.stderr.startswith("Error: ")
    assert fragment in proc.stderr and "Usage:" not in proc.stderr


def test_an_unexpected_failure_is_one_sentence_and_exit_70(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(**_: object) -> None:
        raise RuntimeError("the disk caught fire")

    monkeypatch.setattr(cli, "app", broken)
    monkeypatch.delenv("QRTRACE_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", ["qrtrace", "trace"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 70
    err = capsys.readouterr().err
    assert err == "Unexpected failure (RuntimeError: the disk caught fire); rerun with QRTRACE_DEBUG=1 for details.\n"
