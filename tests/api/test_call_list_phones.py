"""Issue 10, item 4 as it was found: in the demo's call list a quarter of the contacts had no phone (people
who check in with a citizen id or a personal QR), and a scanner could make a named person uncallable by
sending one check-in with their id. Every simulated person is registered with a phone, so every row of
the call list must carry one, also after such a check-in."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import World
from tests.api.test_roles import run_trace

pytestmark = pytest.mark.api


def _phones(client: TestClient, world: World, trace_id: str) -> dict[str, str]:
    resp = client.get(f"/api/traces/{trace_id}/call-list", params={"purpose": "calls", "lang": "en"},
                      headers=world.auth("epidemiologist"))  # fmt: skip
    assert resp.status_code == 200, resp.text
    rows = list(csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert rows
    return {r["person_id"]: r["phone"] for r in rows}


def test_every_contact_stays_callable_after_a_scanner_checks_them_in_with_another_id(
    client: TestClient, world: World
) -> None:
    trace_id = run_trace(client, world, "epidemiologist", ["DEMO-F0-1"], until=world.demo_trace["rules"]["until"])
    phones = _phones(client, world, trace_id)
    not_phones = sorted(p for p in phones if not (p.isdigit() and len(p) == 10))  # citizen ids, personal QRs
    assert not_phones, "the demo trace reaches people who check in without a phone number"
    assert [p for p, phone in phones.items() if not phone] == []
    at = (datetime.now(UTC) - timedelta(minutes=10)).isoformat(timespec="seconds")
    batch = [{"scan_id": f"erase-{n}", "venue_id": world.venue_id, "person_id": person, "direction": "in",
              "event_time": at, "mode": "personal_qr", "scanner_id": "erase"}
             for n, person in enumerate(not_phones[:20])]  # fmt: skip
    resp = client.post("/api/checkins", json=batch, headers=world.auth("scanner"))
    assert resp.status_code == 202 and resp.json()["dead_lettered"] == 0, resp.text
    assert _phones(client, world, trace_id) == phones
