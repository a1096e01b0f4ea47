"""`qrtrace sites` through the real CLI on the worked example (small-wave): publish a case's exposure sites,
list them, withdraw them; idempotent, audited, and a case without visits is one sentence and exit 1."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import SMALL_WAVE
from tests.embedded.conftest import REPLAY_2021, run_cli

pytestmark = pytest.mark.embedded

CASE = "09381480988"
WINDOW = ("--from", "2021-07-20T00:00:00+07:00", "--to", "2021-07-21T00:00:00+07:00")
READ_AUDIT = """
import json, sys
from pathlib import Path
from qrtrace.sinks.chdb_store import ChdbStore
store = ChdbStore(Path(sys.argv[1]))
rows = store.query("SELECT actor, action, case_id, subject, purpose, detail FROM qrtrace.audit_log ORDER BY seq")
store.close()
print(json.dumps([dict(zip(rows, r)) for r in zip(*rows.values())]))
"""


@pytest.fixture
def store(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    run_cli("venues", "import", str(SMALL_WAVE / "venues.csv"), store=store, env=REPLAY_2021)
    run_cli("ingest", str(SMALL_WAVE / "events.jsonl"), store=store, env=REPLAY_2021)
    return store


def _json(*args: str, store: Path) -> object:
    return json.loads(run_cli(*args, "--json", store=store, env={**REPLAY_2021, "QRTRACE_ACTOR": "epi-test"}).stdout)


def _audit(store: Path) -> list[dict]:
    proc = subprocess.run([sys.executable, "-c", READ_AUDIT, str(store)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_publish_list_and_withdraw_a_cases_sites(store: Path) -> None:
    done = _json("sites", "publish", CASE, *WINDOW, "--purpose", "cluster at the karaoke", store=store)
    sites = done["sites"]
    assert done["written"] == len(sites) >= 2
    # Every F1 exposure of the worked example's trace happened during a published window at its venue.
    expected = json.loads((SMALL_WAVE / "expected.json").read_text())
    traced = json.loads(run_cli(*shlex.split(expected["command"])[1:], store=store, env=REPLAY_2021).stdout)
    windows = [(s["venue_id"], datetime.fromisoformat(s["from"]), datetime.fromisoformat(s["to"])) for s in sites]
    f1 = [e for c in traced["contacts"] if c["hop"] == 1 for e in c["exposures"]]
    assert len(f1) >= len([c for c in expected["contacts"] if c["hop"] == 1]) > 0
    for e in f1:
        assert any(v == e["venue_id"] and lo <= datetime.fromisoformat(e["start"]) < hi for v, lo, hi in windows), e
    assert CASE not in json.dumps(sites)  # never the identifier (nor a field for the pseudonym)
    assert not {"case_person", "person"} & set(sites[0])

    again = _json("sites", "publish", CASE, *WINDOW, "--purpose", "published twice", store=store)
    assert again["written"] == 0 and [s["site_id"] for s in again["sites"]] == [s["site_id"] for s in sites]

    listed = _json("sites", "list", store=store)
    assert {s["site_id"] for s in listed} == {s["site_id"] for s in sites}
    assert [s["from"] for s in listed] == sorted(s["from"] for s in listed)
    assert {s["status"] for s in listed} == {"active"} and {s["published_by"] for s in listed} == {"epi-test"}
    assert _json("sites", "list", "--commune", "02536", store=store) == listed
    assert _json("sites", "list", "--commune", "99999", store=store) == []

    gone = sites[0]["site_id"]
    withdrawn = _json("sites", "withdraw", gone, "--purpose", "wrong venue", store=store)
    assert [(s["site_id"], s["status"]) for s in withdrawn] == [(gone, "withdrawn")]
    assert gone not in {s["site_id"] for s in _json("sites", "list", store=store)}
    everything = {s["site_id"]: s["status"] for s in _json("sites", "list", "--all", store=store)}
    assert everything[gone] == "withdrawn" and len(everything) == len(sites)

    rest = _json("sites", "withdraw", "--case", CASE, "--purpose", "case closed", store=store)
    assert {s["status"] for s in rest} == {"withdrawn"} and len(rest) == len(sites)
    assert _json("sites", "list", store=store) == []

    audit = _audit(store)
    published = [e for e in audit if e["action"] == "publish_exposure_sites"]
    assert [e["purpose"] for e in published] == ["cluster at the karaoke", "published twice"]
    assert all(e["actor"] == "epi-test" and e["subject"] and e["subject"] != CASE for e in published)
    assert json.loads(published[0]["detail"])["sites"] == [s["site_id"] for s in sites]
    assert json.loads(published[1]["detail"])["written"] == 0
    withdrawals = [e for e in audit if e["action"] == "withdraw_exposure_sites"]
    assert [e["purpose"] for e in withdrawals] == ["wrong venue", "case closed"]
    assert json.loads(withdrawals[0]["detail"])["sites"] == [gone]
    assert withdrawals[1]["subject"] == published[0]["subject"]  # the case's pseudonym, never the identifier
    assert run_cli("audit", "verify", store=store).returncode == 0  # the entries are chained like the others

    table = run_cli("sites", "list", "--all", "--lang", "en", store=store).stdout
    assert "Published exposure sites" in table and "withdrawn" in table
    vi = run_cli("sites", "list", "--all", store=store).stdout
    assert "Địa điểm có ca bệnh đã công bố" in vi and "đã rút" in vi


def test_a_case_without_visits_and_bad_requests_are_one_sentence(store: Path) -> None:
    proc = run_cli("sites", "publish", "0900000000", *WINDOW, "--purpose", "nobody", "--lang", "en", store=store,
                   check=False, env=REPLAY_2021)  # fmt: skip
    assert proc.returncode == 1 and "no visit in the window" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    blank = run_cli("sites", "publish", CASE, *WINDOW, "--purpose", "  ", store=store, check=False)
    assert blank.returncode == 1 and "purpose" in blank.stderr
    backwards = run_cli("sites", "publish", CASE, "--from", "2021-07-21T00:00:00+07:00", "--to",
                        "2021-07-20T00:00:00+07:00", "--purpose", "backwards", store=store, check=False)  # fmt: skip
    assert backwards.returncode == 1 and "--to is before --from" in backwards.stderr
    unknown = run_cli("sites", "withdraw", "es-0000000000000000", "--purpose", "none such", store=store, check=False)
    assert unknown.returncode == 1 and "es-0000000000000000" in unknown.stderr
    assert _audit(store)[-1]["action"] == "publish_exposure_sites"  # the look-up for nobody was audited too
