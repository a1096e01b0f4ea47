"""Installing the project (issue: the house in order, item 5): `make`'s install step says one line and
shows only pip's warnings and errors."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path

from tests.conftest import REPO

FAKE_PIP = """#!/bin/sh
echo "$@" >> "$(dirname "$0")/pip-calls"
case " $* " in *" --quiet "*|*" -q "*) ;; *) echo "Collecting numpy"; echo "Successfully installed numpy" ;; esac
if [ -n "$FAKE_PIP_ERROR" ]; then echo "ERROR: $FAKE_PIP_ERROR" >&2; exit 1; fi
"""


def _fake_venv(root: Path) -> Path:
    """A venv whose python exists (make does not create one) and whose pip records its calls and talks
    unless told --quiet, as pip does."""
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True)
    for name, text in (("python", "#!/bin/sh\n"), ("pip", FAKE_PIP)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    return root


def _make_install(venv: Path, **env: str) -> subprocess.CompletedProcess:
    stamp = venv / f".installed-{hashlib.sha1((REPO / 'pyproject.toml').read_bytes()).hexdigest()[:12]}"
    return subprocess.run(["make", "--no-print-directory", "-C", str(REPO), f"VENV={venv}", str(stamp)],
                          capture_output=True, text=True, env={**os.environ, **env}, timeout=60)  # fmt: skip


def test_make_install_says_one_line_and_keeps_pip_quiet(tmp_path: Path) -> None:
    venv = _fake_venv(tmp_path / "venv")
    proc = _make_install(venv)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [f"make: installing qrtrace and its dependencies into {venv} ..."]
    assert not proc.stderr
    calls = (venv / "bin" / "pip-calls").read_text().splitlines()
    assert len(calls) == 2 and all("--quiet" in c and "--disable-pip-version-check" in c for c in calls), calls
    assert calls[-1].endswith("-e .[test]")


def test_make_install_still_shows_pips_errors(tmp_path: Path) -> None:
    proc = _make_install(_fake_venv(tmp_path / "venv"), FAKE_PIP_ERROR="No matching distribution for chdb")
    assert proc.returncode != 0
    assert "ERROR: No matching distribution for chdb" in proc.stderr
