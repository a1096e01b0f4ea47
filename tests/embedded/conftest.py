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
