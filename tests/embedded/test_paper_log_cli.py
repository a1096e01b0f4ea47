"""`qrtrace paper template` -> filled by hand -> `qrtrace paper import` -> traced: a manual check-in is
traceable like any other, a re-import stores nothing twice, refused rows are dead letters, nothing raw is
stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import time
from pathlib import Path

import openpyxl
import pytest

from tests.conftest import SMALL_WAVE
from tests.embedded.conftest import REPLAY_2021

pytestmark = pytest.mark.embedded

VENUE = "VN4675010"  # the small wave's case 09381480988 checked in there at 06:25:03 on 2021-07-20
CASE = "09381480988"
PAPER_PHONE = "0988777666"
PAPER_CITIZEN = "079201000123"
BAD_PHONE = "0966111222"

# Every String column of every table, printed by a child process (one chDB engine per process).
DUMP = """
import sys
from qrtrace.embedded import EmbeddedRuntime
from qrtrace.settings import settings_from_env
with EmbeddedRuntime(settings_from_env()) as rt:
    out = []
    for table in rt.store.query("SELECT name FROM system.tables WHERE database = 'qrtrace' "
                                "AND engine != 'MaterializedView'")["name"]:
        cols = rt.store.query("SELECT name FROM system.columns WHERE database = 'qrtrace' AND table = {t:String} "
                              "AND type = 'String'", {"t": table})["name"]
        for col in cols:
            out.extend(str(v) for v in rt.store.query(f"SELECT `{col}` AS v FROM qrtrace.`{table}`")["v"])
    n = rt.store.query("SELECT count() AS n FROM qrtrace.checkins FINAL WHERE scanner_id LIKE 'paper:%'")["n"][0]
    d = rt.store.query("SELECT count() AS n FROM qrtrace.dead_letters FINAL WHERE reason LIKE 'paper_%'")["n"][0]
    sys.stdout.write(f"{n} {d}\\n" + "\\n".join(out))
"""


def store_dump(store: Path) -> tuple[int, int, str]:
    env = {**os.environ, **REPLAY_2021, "QRTRACE_STORE": str(store)}
    proc = subprocess.run([sys.executable, "-c", DUMP], capture_output=True, text=True, env=env, timeout=300,
                          check=True)  # fmt: skip
    head, _, rest = proc.stdout.partition("\n")
    manual, letters = head.split()
    return int(manual), int(letters), rest


def fill(template: Path, out: Path) -> None:
    wb = openpyxl.load_workbook(template)
    ws = wb.active
    rows = [
        (PAPER_PHONE, time(6, 20), "07:10", ""),  # overlaps the case at VN4675010
        (PAPER_CITIZEN, "6h40", None, ""),  # time in only: the default dwell applies
        (BAD_PHONE, "7:30", "7:00", ""),  # time out before time in: refused
        ("", "8:00", None, ""),  # no identifier: refused
    ]
    for i, (ident, t_in, t_out, note) in enumerate(rows):
        r = 8 + i
        ws[f"B{r}"], ws[f"C{r}"], ws[f"D{r}"], ws[f"F{r}"] = ident or None, t_in, t_out, note or None
    ws["B13"], ws["C13"] = '=HYPERLINK("http://x")', "9:00"  # a formula: refused, never run
    wb.save(out)


def test_a_paper_log_round_trips_into_a_trace(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "store"
    cli("venues", "import", str(SMALL_WAVE / "venues.csv"), store=store, env=REPLAY_2021)
    cli("ingest", str(SMALL_WAVE / "events.jsonl"), store=store, env=REPLAY_2021)
    template = tmp_path / "so-giay.xlsx"
    cli("paper", "template", "-o", str(template), "--venue", VENUE, "--date", "2021-07-20", store=store,
        env=REPLAY_2021)  # fmt: skip
    head = openpyxl.load_workbook(template).active
    assert head["B2"].value == VENUE and head["B4"].value == "2021-07-20" and head["C7"].value == "Giờ vào"
    filled = tmp_path / "filled.xlsx"
    fill(template, filled)

    first = cli("paper", "import", str(filled), "--json", store=store, check=False, env=REPLAY_2021)
    assert first.returncode == 1, first.stderr  # rows were refused
    report = json.loads(first.stdout)
    assert report["accepted_rows"] == 2 and report["checkins"] == 3
    assert [(r["row"], r["column"], r["reason"]) for r in report["refused"]] == [
        (10, "D", "paper_out_before_in"), (11, "B", "paper_empty_identifier"), (13, "B", "paper_formula")]  # fmt: skip
    manual, letters, text = store_dump(store)
    assert (manual, letters) == (3, 3)
    for raw in (PAPER_PHONE, PAPER_CITIZEN, BAD_PHONE, "HYPERLINK"):
        assert raw not in text, raw

    window = ("--from", "2021-07-20T00:00:00+07:00", "--to", "2021-07-21T00:00:00+07:00")
    traced = json.loads(cli("trace", CASE, *window, "--until", "2021-07-25T00:00:00+07:00", "--json", store=store,
                            env=REPLAY_2021).stdout)  # fmt: skip
    f1 = {c["person_id"]: c for c in traced["contacts"] if c["hop"] == 1}
    assert PAPER_PHONE in f1 and PAPER_CITIZEN in f1
    assert any(e["venue_id"] == VENUE for e in f1[PAPER_PHONE]["exposures"])

    again = cli("paper", "import", str(filled), "--json", store=store, check=False, env=REPLAY_2021)
    assert again.returncode == 1 and json.loads(again.stdout)["refused"] == report["refused"]
    assert store_dump(store)[:2] == (3, 3)  # nothing stored twice


def test_the_report_in_vietnamese_and_a_file_that_is_not_a_template(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "store"
    cli("venues", "import", str(SMALL_WAVE / "venues.csv"), store=store, env=REPLAY_2021)
    template = tmp_path / "t.xlsx"
    cli("paper", "template", "-o", str(template), store=store, env=REPLAY_2021)
    filled = tmp_path / "f.xlsx"
    fill(template, filled)
    shown = cli("paper", "import", str(filled), "--venue", VENUE, "--date", store=store, check=False, env=REPLAY_2021)
    assert shown.returncode == 2  # --date is not an import option: usage
    ok = cli("paper", "import", str(filled), "--venue", VENUE, store=store, check=False, env=REPLAY_2021)
    assert ok.returncode == 1
    assert "Dòng bị từ chối" in ok.stdout and "thiếu ngày ở đầu bảng" in ok.stdout  # the template had no date
    en = cli("paper", "import", str(filled), "--venue", VENUE, store=store, check=False,
             env={**REPLAY_2021, "QRTRACE_LANG": "en"})  # fmt: skip
    assert en.returncode == 1 and "Rows refused" in en.stdout and "the sheet's date (cell B4) is missing" in en.stdout
    not_xlsx = tmp_path / "x.xlsx"
    not_xlsx.write_text("venue_id,name\n")
    bad = cli("paper", "import", str(not_xlsx), store=store, check=False, env=REPLAY_2021)
    assert bad.returncode == 1 and bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1 and "XLSX" in bad.stderr and "Traceback" not in bad.stderr
