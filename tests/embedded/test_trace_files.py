"""Files the CLI and the demo leave on disk: spreadsheet cells are never formulas (one escaping rule),
files holding identifiers are 0600 and said to hold them, and the demo's files are pseudonymous unless
asked (issue 10, items 5 and 6)."""

from __future__ import annotations

import csv
import json
import stat
from pathlib import Path

import pytest

from qrtrace.identity import normalise_identifier
from tests.conftest import SMALL_WAVE
from tests.embedded.conftest import REPLAY_2021

pytestmark = pytest.mark.embedded

FORMULA_CASE = "=cmd|'/c calc'!A0"
FORMULA_CONTACT = "=1+2"
WINDOW = ("--from", "2021-07-20T00:00:00+07:00", "--to", "2021-07-21T00:00:00+07:00",
          "--until", "2021-07-25T00:00:00+07:00")  # fmt: skip


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_trace_files_escape_formulas_and_are_private(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A scanner sent person ids that a spreadsheet would run; the call list and cohort show them as text."""
    expected = json.loads((SMALL_WAVE / "expected.json").read_text())
    contact = expected["contacts"][0]["person_id"]
    events = (SMALL_WAVE / "events.jsonl").read_text()
    events = events.replace(f'"{expected["case"]}"', json.dumps(FORMULA_CASE))
    events = events.replace(f'"{contact}"', json.dumps(FORMULA_CONTACT))
    (tmp_path / "events.jsonl").write_text(events)
    store = tmp_path / "store"
    cli("venues", "import", str(SMALL_WAVE / "venues.csv"), store=store)
    cli("ingest", str(tmp_path / "events.jsonl"), store=store, env=REPLAY_2021)
    calls, folder = tmp_path / "calls.csv", tmp_path / "traces"
    cases = tmp_path / "cases.csv"
    cases.write_text(f'case_id,person_id,from,to\nc1,"{FORMULA_CASE}",{WINDOW[1]},{WINDOW[3]}\n')
    single = cli("trace", FORMULA_CASE, *WINDOW, "--csv", str(calls), store=store, env={"QRTRACE_LANG": "en"})
    assert "plain text" in single.stderr and str(calls) in single.stderr
    batch = cli("trace", "--cases", str(cases), *WINDOW[4:], "--out", str(folder), store=store,
                env={"QRTRACE_LANG": "en"})  # fmt: skip
    assert "plain text" in batch.stderr
    written = [calls, *folder.iterdir()]
    assert {p.name for p in folder.iterdir()} == {"c1.json", "cohort.json", "cohort.csv"}
    assert all(_mode(p) == 0o600 for p in written), {p.name: oct(_mode(p)) for p in written}
    for sheet in (calls, folder / "cohort.csv"):
        cells = [cell for row in csv.reader(sheet.open(encoding="utf-8")) for cell in row]
        assert not [c for c in cells if c.startswith(("=", "+", "@"))], sheet
        assert f"'{FORMULA_CONTACT}" in cells, sheet
    rows = list(csv.DictReader(calls.open(encoding="utf-8")))
    # The case is shown in the one spelling the vault keeps (as the API shows it), escaped in a sheet
    assert rows and {r["case"] for r in rows} == {f"'{normalise_identifier(FORMULA_CASE)}"}
    # JSON is data, not a spreadsheet: the identifier is not escaped
    assert json.loads((folder / "c1.json").read_text())["case"] == normalise_identifier(FORMULA_CASE)


def test_the_demo_leaves_pseudonymous_private_files_unless_asked(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "store"
    proc = cli("demo", "--population", "400", "--days", "1", store=store, env={"QRTRACE_LANG": "en"})
    exports = store / "exports"
    doc = json.loads((exports / "trace-DEMO-F0-1.json").read_text())
    people = [doc["case"], *(c["person_id"] for c in doc["contacts"])]
    assert len(people) > 1 and all(len(p) == 32 and int(p, 16) >= 0 for p in people)  # pseudonyms (hex HMAC)
    assert "pseudonyms only" in proc.stdout
    assert _mode(exports) == 0o700
    assert _mode(exports / "trace-DEMO-F0-1.json") == _mode(exports / "trace-DEMO-F0-1.csv") == 0o600
    asked = cli("demo", "--population", "400", "--days", "1", "--reidentified-exports", store=store,
                env={"QRTRACE_LANG": "en"})  # fmt: skip
    doc = json.loads((exports / "trace-DEMO-F0-1.json").read_text())
    assert not any(len(c["person_id"]) == 32 for c in doc["contacts"])  # identifiers now
    assert "plain text" in asked.stdout and "0600" in asked.stdout
    assert _mode(exports / "trace-DEMO-F0-1.json") == _mode(exports / "trace-DEMO-F0-1.csv") == 0o600
