"""The ingesting runtime keeps its edge and processor configuration between ingests (an API scanner
batch is one ingest): a venue it registers is accepted at once, a person's identity row is sealed once,
and a failed ingest starts afresh so that nothing it did not write is taken as written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qrtrace.domain.venues import Venue, read_venues_csv
from qrtrace.embedded import EmbeddedRuntime
from qrtrace.errors import StoreError
from qrtrace.settings import Settings
from tests.conftest import SMALL_WAVE
from tests.embedded.conftest import REPLAY_2021

pytestmark = pytest.mark.embedded


def scan(n: int, venue: str, person: str = "0912345678") -> bytes:
    return json.dumps({"scan_id": f"cache-{n}", "venue_id": venue, "person_id": person, "direction": "in",
                       "event_time": f"2021-07-25T{3 * (n - 1):02d}:00:00+07:00", "mode": "personal_qr",
                       "scanner_id": "s"}).encode()  # fmt: skip


def test_the_runtime_keeps_its_edge_between_ingests(tmp_path: Path) -> None:
    settings = Settings(store=str(tmp_path / "store"), key_file=tmp_path / "keys.json", now=REPLAY_2021["QRTRACE_NOW"])
    with EmbeddedRuntime(settings) as rt:
        rt.register_venues(read_venues_csv(SMALL_WAVE / "venues.csv", rt.commune_codes()))
        inserted: list[str] = []
        real_insert = rt.store.insert

        def counting(table: str, columns):  # type: ignore[no-untyped-def]
            inserted.append(table)
            return real_insert(table, columns)

        rt.store.insert = counting  # type: ignore[method-assign]
        for n in range(1, 4):  # the same person three times: one identity row
            assert rt.ingest([[scan(n, "VN4675010")]], source="test").accepted == 1
        assert inserted.count("qrtrace.identity_vault") == 1
        # A venue registered through this runtime is accepted by the very next ingest.
        rt.register_venues([Venue("VN-NEW-1", "Quán mới", "restaurant", "02536", 20)])
        assert rt.ingest([[scan(4, "VN-NEW-1")]], source="test").accepted == 1
        # A failed ingest forgets the edge: the retry seals the identity again (its row may be missing).
        real_checkins = rt.writer.checkins

        def away(*args: object, **kwargs: object) -> None:
            raise StoreError("The store went away.")

        rt.writer.checkins = away  # type: ignore[method-assign]
        with pytest.raises(StoreError):
            rt.ingest([[scan(5, "VN4675010", "0912000555")]], source="test")
        rt.writer.checkins = real_checkins  # type: ignore[method-assign]
        before = inserted.count("qrtrace.identity_vault")
        assert rt.ingest([[scan(5, "VN4675010", "0912000555")]], source="test").accepted == 1
        assert inserted.count("qrtrace.identity_vault") == before + 1
