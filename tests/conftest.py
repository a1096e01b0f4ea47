"""Shared fixtures. Tests never touch the user's key file or default store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
# The worked example lives in ../shared; a copy travels with the tests so a clone elsewhere still runs
# them, and test_fixtures.py fails if the copy drifts from the shared original.
SMALL_WAVE = REPO / "tests" / "fixtures" / "small-wave"


@pytest.fixture(autouse=True)
def _isolated_keys(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = tmp_path_factory.getbasetemp() / "keys" / "keys.json"
    monkeypatch.setenv("QRTRACE_KEY_FILE", str(keys))
    monkeypatch.delenv("QRTRACE_STORE", raising=False)


def qrtrace_bin() -> str:
    exe = Path(os.sys.executable).parent / "qrtrace"
    assert exe.exists(), f"the qrtrace entry point is not installed next to {os.sys.executable}"
    return str(exe)
