"""The audit log's hash chain (issue 10 item 11): `qrtrace audit verify` says in one sentence that the chain
holds, or names the first entry that breaks it and exits 1, for each way a row can be changed in the store
around the audit log; a store made before the chain opens, gets its columns and is reported as such."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.embedded.conftest import run_cli

pytestmark = pytest.mark.embedded

WRITE = """
import sys
from pathlib import Path
from qrtrace.embedded import EmbeddedRuntime
from qrtrace.settings import Settings
settings = Settings(store=sys.argv[1], key_file=Path(sys.argv[2]), actor="chain-test")
with EmbeddedRuntime(settings) as rt:
    for i in range(1, 6):
        rt.audit.record("trace", f"CASE-{i}", f"person-{i}", "outbreak investigation", contacts=i)
"""
TAMPER = """
import sys
from pathlib import Path
from qrtrace.sinks.chdb_store import ChdbStore
store = ChdbStore(Path(sys.argv[1]))
for statement in sys.argv[2:]:
    store.execute(statement)
store.close()
"""
# A store as qrtrace wrote it before the chain: the old audit_log layout, two entries, layout v3.
OLD_STORE = """
import sys
from chdb import session
s = session.Session(sys.argv[1] + "/chdb")
s.query("CREATE DATABASE IF NOT EXISTS qrtrace")
s.query("CREATE TABLE qrtrace.schema_meta (version UInt32, created_at_us Int64) ENGINE = TinyLog")
s.query("INSERT INTO qrtrace.schema_meta VALUES (3, 1600000000000000)")
s.query("CREATE TABLE qrtrace.audit_log (at_us Int64, actor String, action String, case_id String, subject String, "
        "purpose String, detail String) ENGINE = MergeTree PARTITION BY intDiv(at_us, 86400000000) ORDER BY at_us")
s.query("INSERT INTO qrtrace.audit_log VALUES (1600000000000000, 'old', 'trace', 'C', 'p', 'why', '{}'), "
        "(1600000001000000, 'old', 'reidentify', 'C', '', 'why', '{}')")
s.close()
"""
MUTATE = " SETTINGS mutations_sync = 1"


def _python(script: str, *args: str) -> None:
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def _verify(store: Path, *args: str) -> subprocess.CompletedProcess:
    return run_cli("audit", "verify", "--lang", "en", *args, store=store, check=False,
                   env={"QRTRACE_KEY_FILE": str(store.parent / "keys.json"), "QRTRACE_LANG": "en"})  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A fresh store with five chained entries (chDB stores cannot be copied: their metadata links by path)."""
    _python(WRITE, str(tmp_path / "store"), str(tmp_path / "keys.json"))
    return tmp_path / "store"


def test_an_untouched_log_verifies_and_prints_its_anchor(store: Path) -> None:
    proc = _verify(store)
    assert proc.returncode == 0, proc.stderr
    sentence = proc.stdout.strip()
    assert "\n" not in sentence and sentence.startswith("The audit log is intact: 5 entries form one unbroken")
    anchor = re.search(r"#(\d+:[0-9a-f]{64})", sentence).group(1)
    assert anchor.startswith("5:")
    assert _verify(store, "--anchor", anchor).returncode == 0


@pytest.mark.parametrize(
    ("statements", "words"),
    [
        ([f"ALTER TABLE qrtrace.audit_log UPDATE purpose = 'routine' WHERE seq = 3{MUTATE}"],
         r"broken at entry #3 \(.*, chain-test, trace\): its content was changed after it was written"),
        ([f"ALTER TABLE qrtrace.audit_log DELETE WHERE seq = 2{MUTATE}"],
         "broken at entry #3 .*: entry #2 was removed"),
        (["INSERT INTO qrtrace.audit_log (at_us, actor, action, case_id, subject, purpose, detail) VALUES "
          "(4102444800000000, 'intruder', 'trace', 'X', 'p', 'cover', '{}')"],
         "broken at entry without a number .*intruder, trace.*: it carries no hash"),
        (["INSERT INTO qrtrace.audit_log SELECT at_us, actor, action, case_id, subject, purpose, detail, seq, "
          "prev_hash, entry_hash FROM qrtrace.audit_log WHERE seq = 4"],
         "broken at entry #4 .*: a second entry has this number"),
    ],
    ids=["changed", "removed", "written around", "duplicated"],
)
def test_a_tampered_log_names_its_first_bad_entry(store: Path, statements: list[str], words: str) -> None:
    _python(TAMPER, str(store), *statements)
    proc = _verify(store)
    assert proc.returncode == 1 and not proc.stdout, proc.stdout
    assert proc.stderr.count("\n") == 1 and re.search(words, proc.stderr), proc.stderr


def test_a_cut_tail_needs_the_anchor(store: Path) -> None:
    anchor = re.search(r"#(\d+:[0-9a-f]{64})", _verify(store).stdout).group(1)
    _python(TAMPER, str(store), f"ALTER TABLE qrtrace.audit_log DELETE WHERE seq >= 4{MUTATE}")
    alone = _verify(store)
    assert alone.returncode == 0 and "3 entries" in alone.stdout  # a shorter chain is still whole ...
    proc = _verify(store, "--anchor", anchor)  # ... but not the one recorded earlier
    assert proc.returncode == 1 and "The anchor entry #5 is no longer in the chain" in proc.stderr, proc.stderr


def test_a_store_from_before_the_chain_opens_and_reports_its_older_entries(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    _python(OLD_STORE, str(store))
    _python(WRITE, str(store), str(tmp_path / "keys.json"))  # opens it (adds the columns) and writes 5 entries
    proc = _verify(store)
    assert proc.returncode == 0, proc.stderr
    assert "5 entries form one unbroken hash chain" in proc.stdout
    assert "2 older entries were written before the chain existed and are not covered" in proc.stdout
