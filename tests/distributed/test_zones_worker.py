"""Zoned check-ins through the distributed path (issue 14): the edge checks zones, Avro Checkin v3 carries
them in bundles, a Faust worker pairs by zone, and the ClickHouse server keeps each check-in's and visit's
zone."""

from __future__ import annotations

import json

import pytest

from qrtrace.sinks.clickhouse_store import ClickHouseStore
from tests.distributed.helpers import wait_for

pytestmark = pytest.mark.distributed

VENUES = """venue_id,name,category,commune_code,capacity,zones
ZCHO-1,Chợ thử khu vực,market,02536,500,Khu A;Khu B
"""


def _line(scan: str, minute: int, zone: str | None, direction: str = "in") -> str:
    record = {"scan_id": scan, "venue_id": "ZCHO-1", "person_id": "0912000222", "direction": direction,
              "event_time": f"2021-07-26T08:{minute:02d}:00+07:00", "mode": "venue_qr", "scanner_id": "Z"}  # fmt: skip
    if zone is not None:
        record["zone"] = zone
    return json.dumps(record, ensure_ascii=False)


def test_a_worker_pairs_zoned_checkins_and_stores_their_zones(pipeline, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "venues.csv").write_text(VENUES, encoding="utf-8")
    pipeline.cli("venues", "import", str(tmp_path / "venues.csv"))
    lines = [_line("wz1", 0, "Khu A"), _line("wz2", 15, "Khu B"), _line("wz3", 40, None, "out"),
             _line("wz4", 45, "Khu C")]  # fmt: skip
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    sent = pipeline.cli("produce", str(tmp_path / "in.jsonl"))
    assert "sent 3 check-ins, 1 dead letters" in sent, sent  # Khu C is not a zone of this market
    pipeline.start_worker(tmp_path / "w.log")
    visits_sql = ("SELECT opened_by, zone, end_us - start_us AS us FROM qrtrace.visits_by_venue FINAL "
                  "WHERE venue_id = 'ZCHO-1' AND withdrawn = 0 ORDER BY opened_by")  # fmt: skip

    def read() -> dict:
        with ClickHouseStore(pipeline.servers.store_url) as store:
            return {"visits": store.query(visits_sql),
                    "checkins": store.query("SELECT scan_id, zone FROM qrtrace.checkins FINAL "
                                            "WHERE venue_id = 'ZCHO-1' ORDER BY scan_id")}  # fmt: skip

    got = wait_for(read, lambda r: len(r["checkins"]["scan_id"]) == 3 and len(r["visits"]["opened_by"]) == 2,
                   timeout_s=180)  # fmt: skip
    log = (tmp_path / "w.log").read_text(errors="replace")[-1500:]
    assert got["checkins"] == {"scan_id": ["wz1", "wz2", "wz3"], "zone": ["Khu A", "Khu B", ""]}, log
    assert got["visits"] == {"opened_by": ["wz1", "wz2"], "zone": ["Khu A", "Khu B"],
                             "us": [15 * 60_000_000, 25 * 60_000_000]}, log  # fmt: skip
