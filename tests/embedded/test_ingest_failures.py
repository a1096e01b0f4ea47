"""A store that fails in the middle of an ingest: nothing is acknowledged, and sending the same batch
again stores all of it (the processor's memory of the failed pass must not turn the resend into
"retries" to drop). The store and the runtime are real; the failure is injected into one write."""

from __future__ import annotations

from pathlib import Path

import pytest

from qrtrace.domain.venues import read_venues_csv
from qrtrace.embedded import EmbeddedRuntime
from qrtrace.errors import StoreError
from qrtrace.settings import Settings
from tests.conftest import SMALL_WAVE
from tests.embedded.conftest import REPLAY_2021

pytestmark = pytest.mark.embedded

VISITS = "SELECT venue_id, person, start_us, end_us, version, opened_by FROM qrtrace.visits_by_venue FINAL"
CHECKINS = "SELECT scan_id, venue_id, person, event_time_us, outcome FROM qrtrace.checkins FINAL"


def _ingest(store: Path, keys: Path, fail_first_write: bool) -> dict[str, set[tuple]]:
    lines = [line for line in (SMALL_WAVE / "events.jsonl").read_bytes().splitlines() if line.strip()]
    with EmbeddedRuntime(Settings(store=str(store), key_file=keys, now=REPLAY_2021["QRTRACE_NOW"])) as rt:
        rt.register_venues(read_venues_csv(SMALL_WAVE / "venues.csv", rt.commune_codes()))
        if fail_first_write:
            real = rt.writer.checkins

            def away(*args: object, **kwargs: object) -> None:
                raise StoreError("The store went away.")

            rt.writer.checkins = away  # type: ignore[method-assign]
            with pytest.raises(StoreError):
                rt.ingest([lines[:80]], source="test")
            rt.writer.checkins = real  # type: ignore[method-assign]
        rt.ingest([lines[:80]], source="test")  # the same batch again (or for the first time)
        rt.ingest([lines[80:]], source="test")
        return {name: set(zip(*rt.store.query(sql).values(), strict=True))
                for name, sql in (("visits", VISITS), ("checkins", CHECKINS))}  # fmt: skip


def test_a_batch_resent_after_a_store_failure_is_stored_whole(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    want = _ingest(tmp_path / "clean", keys, fail_first_write=False)
    got = _ingest(tmp_path / "failed-once", keys, fail_first_write=True)
    assert len(want["checkins"]) > 100 and len(want["visits"]) > 20
    assert got == want
