"""A large batch trace runs in bounded memory (issue 10, item 2): many heavy cases at depth 2 on the full
demo store, through the API service, in a child process whose address space is capped (see
trace_memory_child.py for why the cap is relative to an opened store), and a fixed peak-RSS limit.

Before the traces were chunked, every case's exposures were built as Python objects and one JSON
document: ~50-100 MB per heavy case, so 200 cases needed well over 10 GB and failed under this cap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import qrtrace_bin

pytestmark = pytest.mark.embedded

CASES = int(os.environ.get("QRTRACE_MEMORY_TEST_CASES", "200"))
BUDGET_MB = 4096  # address space the trace may add to an opened store (chDB reserves more as it runs)
PEAK_RSS_MB = 4096  # the fixed cap


def test_a_large_batch_trace_completes_under_a_memory_cap(tmp_path: Path) -> None:
    store, keys = tmp_path / "store", tmp_path / "keys"
    env = {**os.environ, "QRTRACE_KEY_FILE": str(keys / "keys.json"), "QRTRACE_TOKEN_FILE": str(keys / "tokens.json")}
    env.pop("QRTRACE_STORE", None)
    demo = subprocess.run([qrtrace_bin(), "demo", "--store", str(store)], capture_output=True, text=True, env=env,
                          timeout=600)  # fmt: skip
    assert demo.returncode == 0, demo.stderr
    child = Path(__file__).with_name("trace_memory_child.py")
    proc = subprocess.run([sys.executable, str(child), str(store), str(keys), str(CASES), str(BUDGET_MB)],
                          capture_output=True, text=True, env=env, timeout=900,
                          cwd=Path(__file__).parents[2])  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.splitlines()[-1])
    assert got["status"] == "done", got
    assert got["cases"] == CASES and got["contacts"] > 1000 * CASES  # heavy cases: thousands of F2 each
    assert got["peak_rss_mb"] < PEAK_RSS_MB, got
    assert "QRTRACE_TRACE_RESULT_MAX_ROWS" in got["whole_result"]  # millions of rows: refused with a sentence
    assert got["one_case_contacts"] > 1000  # ... but each case reads on its own
