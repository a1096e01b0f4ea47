"""Embedded tier: the real CLI and the real chDB store, in temporary directories."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import qrtrace_bin

pytestmark = pytest.mark.embedded


def run_cli(*args: str, store: Path, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "QRTRACE_STORE": str(store), "COLUMNS": "200", **(env or {})}
    proc = subprocess.run([qrtrace_bin(), *args], capture_output=True, text=True, env=full_env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"qrtrace {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def cli():  # type: ignore[no-untyped-def]
    return run_cli


# The worked example and the fixtures are from July 2021: ingest them as a replay, with the receiving
# clock set to just after them (otherwise they are older than the retention period, i.e. dead letters).
REPLAY_2021 = {"QRTRACE_NOW": "2021-07-25T12:00:00+07:00"}
