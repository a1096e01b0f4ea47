"""Installing the project (issue: the house in order, items 5 and 6): `make`'s install step says one line
and shows only pip's warnings and errors; `pip install -e .` warns about nothing and leaves a plain .pth
path that static tools (pyright, IDEs) follow, not an import hook."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.fixture(scope="module")
def editable(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    """`pip install -e .` of this checkout into a scratch prefix (--ignore-installed: the project's venv,
    which runs the tests, keeps its own install)."""
    prefix = tmp_path_factory.mktemp("prefix")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check",
                           "--ignore-installed", "-e", str(REPO), "--prefix", str(prefix)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (site,) = prefix.glob("lib/python3*/site-packages")
    return proc, site


def test_pip_install_editable_warns_about_nothing(editable: tuple[subprocess.CompletedProcess, Path]) -> None:
    proc, _ = editable
    said = proc.stdout + proc.stderr
    assert "warn" not in said.lower(), said


def test_the_editable_install_is_a_plain_path(editable: tuple[subprocess.CompletedProcess, Path]) -> None:
    _, site = editable
    assert not list(site.glob("__editable__*finder*.py"))  # no import hook
    (pth,) = site.glob("__editable__.qrtrace-*.pth")
    entries = [line for line in pth.read_text().splitlines() if line.strip()]
    assert entries and not any(line.startswith("import") for line in entries), entries
    (root,) = entries
    for module in ("qrtrace/cli.py", "qrtrace/sinks/store.py", "qrtrace/api/app.py", "qrtrace/queries/sql"):
        assert (Path(root) / module).exists(), module  # what a static tool finds under the path


def test_subpackages_import_from_any_directory(tmp_path: Path) -> None:
    code = "import qrtrace.sinks.store as m, qrtrace.api.routes; print(m.__file__)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).resolve() == (REPO / "sinks" / "store.py").resolve()
