"""Shared fixtures. Tests never touch the user's key file or default store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SMALL_WAVE = SHARED / "examples" / "small-wave"


@pytest.fixture(autouse=True)
def _isolated_keys(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = tmp_path_factory.getbasetemp() / "keys" / "keys.json"
    monkeypatch.setenv("QRTRACE_KEY_FILE", str(keys))
    monkeypatch.delenv("QRTRACE_STORE", raising=False)


def qrtrace_bin() -> str:
    exe = Path(os.sys.executable).parent / "qrtrace"
    assert exe.exists(), f"the qrtrace entry point is not installed next to {os.sys.executable}"
    return str(exe)
