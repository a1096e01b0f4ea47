"""The embedded runtime's per-venue state file: stopping and reloading the state between every batch
pairs exactly as one uninterrupted processor does, and only touched venues are rewritten."""

from __future__ import annotations

import secrets
from pathlib import Path

import numpy as np
import pytest

from qrtrace.domain.categories import load_categories
from qrtrace.identity import Pseudonymiser, Vault
from qrtrace.producers.edge import Edge
from qrtrace.producers.simulator import SimulationConfig, build_district, checkin_batches
from qrtrace.stream_processors.batch import US_PER_MINUTE, CheckinBatch
from qrtrace.stream_processors.pipeline import CheckinProcessor, ProcessorConfig, ProcessorOutput
from qrtrace.stream_processors.venue_state_file import VenueStateFile


@pytest.fixture(scope="module")
def district_batches() -> tuple[ProcessorConfig, list[CheckinBatch]]:
    district = build_district(SimulationConfig(seed=11, days=2, population=600))
    cats = load_categories()
    config = ProcessorConfig(
        dwell_us_by_venue={v.venue_id: cats[v.category].default_dwell_minutes * US_PER_MINUTE for v in district.venues},
        capacity_by_venue={v.venue_id: v.capacity for v in district.venues},
        dedupe_window_us=48 * 60 * US_PER_MINUTE,
        occupancy_window_us=15 * US_PER_MINUTE,
    )
    edge = Edge(Pseudonymiser(secrets.token_bytes(32)), Vault(secrets.token_bytes(32)),
                {v.venue_id for v in district.venues})  # fmt: skip
    return config, [edge.admit(lines).checkins for lines in checkin_batches(district, 250)]


def _visits(outputs: list[ProcessorOutput]) -> set[tuple]:
    found = set()
    for out in outputs:
        v = out.visits
        found |= set(zip(v.venue_id.tolist(), v.person.tolist(), v.start_us.tolist(), v.end_us.tolist(),
                         v.version.tolist(), strict=True))  # fmt: skip
    return found


def _outcomes(outputs: list[ProcessorOutput]) -> dict[str, int]:
    values, counts = np.unique(np.concatenate([o.outcome for o in outputs]).astype(str), return_counts=True)
    return dict(zip(values.tolist(), counts.tolist(), strict=True))


def test_reloading_between_batches_pairs_like_one_processor(district_batches, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config, batches = district_batches
    assert len(batches) > 10
    one = CheckinProcessor(config)
    straight = [one.process(b) for b in batches]

    path = tmp_path / "venue_state.sqlite"
    resumed = []
    written = []
    for batch in batches:
        store = VenueStateFile(path)  # a new process each time: nothing kept in memory
        p = CheckinProcessor(config, store.load())
        resumed.append(p.process(batch))
        written.append(store.save(p.state, p.state.take_changed()))
        store.close()

    assert _visits(resumed) == _visits(straight) and len(_visits(straight)) > 500
    assert _outcomes(resumed) == _outcomes(straight)
    assert sum(o.retried for o in resumed) == sum(o.retried for o in straight) > 0
    assert min(written) < len(config.dwell_us_by_venue)  # a batch rewrites the venues it touched, not all


def test_a_file_of_another_format_starts_afresh(district_batches, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config, batches = district_batches
    store = VenueStateFile(tmp_path / "s.sqlite")
    p = CheckinProcessor(config, store.load())
    p.process(batches[0])
    store.save(p.state, p.state.take_changed())
    store._db.execute("UPDATE meta SET value = 999 WHERE key = 'format'")
    store.close()
    assert not VenueStateFile(tmp_path / "s.sqlite").load().venues


def test_one_process_at_a_time_owns_the_state(tmp_path: Path) -> None:
    from qrtrace.stream_processors.venue_state_file import StateInUse

    first = VenueStateFile(tmp_path / "s.sqlite")
    with pytest.raises(StateInUse, match="Another qrtrace process"):
        VenueStateFile(tmp_path / "s.sqlite")
    first.close()
    VenueStateFile(tmp_path / "s.sqlite").close()  # free again once closed
