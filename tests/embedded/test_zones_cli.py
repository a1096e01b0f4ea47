"""Venue zones end to end (issue 14): the venues file's zones column, each zone's QR poster, and zoned
check-ins through `qrtrace ingest` landing with their zone in checkins and visits (an unknown zone is a
dead letter)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.embedded.conftest import REPLAY_2021

pytestmark = pytest.mark.embedded

VENUES = """venue_id,name,category,commune_code,capacity,zones
CHO-1,Chợ Sơn Dương,market,02536,800,Khu hàng khô;Khu thực phẩm tươi sống;Khu quần áo
NH-1,Nhà hàng Suối,restaurant,02536,60,
"""
QUERY = """
import json, sys
from pathlib import Path
from qrtrace.sinks.chdb_store import ChdbStore
store = ChdbStore(Path(sys.argv[1]))
print(json.dumps({name: store.query(sql) for name, sql in json.loads(sys.argv[2]).items()}))
store.close()
"""


def query(store: Path, **sql: str) -> dict:
    """Read the store in a child process (one chDB engine per process)."""
    done = subprocess.run([sys.executable, "-c", QUERY, str(store), json.dumps(sql)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def checkin(scan: str, venue: str, minute: int, zone: str | None = None, direction: str = "in") -> str:
    record = {"scan_id": scan, "venue_id": venue, "person_id": "0912000111", "direction": direction,
              "event_time": f"2021-07-20T08:{minute:02d}:00+07:00", "mode": "venue_qr", "scanner_id": "S1"}  # fmt: skip
    if zone is not None:
        record["zone"] = zone
    return json.dumps(record, ensure_ascii=False)


@pytest.fixture
def store(cli, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path / "store"
    (tmp_path / "venues.csv").write_text(VENUES, encoding="utf-8")
    cli("venues", "import", str(tmp_path / "venues.csv"), store=path)
    return path


def test_venues_import_keeps_zones_and_refuses_bad_rows_by_line(cli, store: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    got = query(store, venues="SELECT venue_id, zones FROM qrtrace.venues FINAL ORDER BY venue_id")["venues"]
    assert got == {"venue_id": ["CHO-1", "NH-1"], "zones": ["Khu hàng khô;Khu thực phẩm tươi sống;Khu quần áo", ""]}
    for cell, words in (("Khu A;Khu A", "appears twice"), ("Khu A;;Khu B", "empty"), ("Z" * 65, "longer than 64")):
        bad = tmp_path / "bad.csv"
        bad.write_text(VENUES.splitlines()[0] + f"\nX-1,Chợ X,market,02536,10,\nX-2,Chợ Y,market,02536,10,{cell}\n",
                       encoding="utf-8")  # fmt: skip
        proc = cli("venues", "import", str(bad), store=store, check=False)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode != 0 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert "line 3" in lines[0] and words in lines[0], lines[0]
    assert query(store, n="SELECT count() AS n FROM qrtrace.venues FINAL")["n"]["n"] == [2]  # nothing registered
    older = tmp_path / "older.csv"  # a file without the zones column keeps the zones venues have
    older.write_text("venue_id,name,category,commune_code,capacity\nCHO-1,Chợ Sơn Dương mới,market,02536,900\n",
                     encoding="utf-8")  # fmt: skip
    cli("venues", "import", str(older), store=store)
    kept = query(store, v="SELECT name, zones FROM qrtrace.venues FINAL WHERE venue_id = 'CHO-1'")["v"]
    assert kept == {"name": ["Chợ Sơn Dương mới"], "zones": ["Khu hàng khô;Khu thực phẩm tươi sống;Khu quần áo"]}


def test_qr_zone_writes_the_zones_poster_and_an_unknown_zone_is_one_line(cli, store: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "kho.png"
    cli("qr", "CHO-1", "--zone", "Khu hàng khô", "-o", str(out), store=store)
    with Image.open(out) as image:
        payload = image.text["qrtrace:payload"]
    claims = json.loads(__import__("base64").urlsafe_b64decode(payload.split(".")[1] + "==").decode())
    assert claims["v"] == "CHO-1" and claims["z"] == "Khu hàng khô"
    plain = tmp_path / "cho.svg"
    cli("qr", "CHO-1", "-o", str(plain), store=store)
    assert "Khu vực" not in plain.read_text(encoding="utf-8")
    for venue, zone in (("CHO-1", "Khu cá"), ("NH-1", "Khu A")):
        proc = cli("qr", venue, "--zone", zone, "-o", str(tmp_path / "x.png"), store=store, check=False)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode != 0 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert f"has no zone '{zone}'" in lines[0]
    assert not (tmp_path / "x.png").exists()


def test_zoned_checkins_land_with_their_zone_and_unknown_zones_are_dead_letters(cli, store: Path,
                                                                                 tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lines = [
        checkin("z1", "CHO-1", 0, "Khu hàng khô"),
        checkin("z2", "CHO-1", 5, "Khu hàng khô"),  # a repeat scan in the same section
        checkin("z3", "CHO-1", 20, "Khu quần áo"),  # another section: a new visit, the first ends here
        checkin("z4", "CHO-1", 50, direction="out"),  # an `out` closes whatever is open
        checkin("z5", "CHO-1", 55, "Khu cá"),  # not a zone of this market
        checkin("z6", "NH-1", 10, "Khu A"),  # a venue without zones
        checkin("z7", "NH-1", 12),
    ]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = cli("ingest", str(tmp_path / "in.jsonl"), "--json", store=store, env=REPLAY_2021)
    report = json.loads(proc.stdout)
    assert (report["accepted"], report["deduplicated"], report["dead_lettered"]) == (4, 1, 2), report  # z2: a repeat
    got = query(
        store,
        checkins="SELECT scan_id, zone FROM qrtrace.checkins FINAL ORDER BY scan_id",
        visits="SELECT opened_by, zone, start_us, end_us FROM qrtrace.visits_by_venue FINAL WHERE withdrawn = 0 "
        "ORDER BY opened_by",
        by_person="SELECT opened_by, zone FROM qrtrace.visits_by_person FINAL WHERE withdrawn = 0 ORDER BY opened_by",
        feed="SELECT DISTINCT opened_by, zone FROM qrtrace.visit_feed ORDER BY opened_by",
        letters="SELECT reason, payload_redacted FROM qrtrace.dead_letters FINAL ORDER BY payload_redacted",
    )
    assert got["checkins"] == {"scan_id": ["z1", "z2", "z3", "z4", "z7"],
                               "zone": ["Khu hàng khô", "Khu hàng khô", "Khu quần áo", "", ""]}  # fmt: skip
    minute = 60_000_000
    visits = got["visits"]
    assert visits["opened_by"] == ["z1", "z3", "z7"] and visits["zone"] == ["Khu hàng khô", "Khu quần áo", ""]
    assert [e - s for s, e in zip(visits["start_us"], visits["end_us"], strict=True)][:2] == [20 * minute, 30 * minute]
    assert got["by_person"] == {"opened_by": ["z1", "z3", "z7"], "zone": ["Khu hàng khô", "Khu quần áo", ""]}
    assert got["feed"] == got["by_person"]
    assert got["letters"]["reason"] == ["unknown_zone", "unknown_zone"]
    assert all('"zone"' in p for p in got["letters"]["payload_redacted"])
