"""Producer -> Kafka -> two Faust workers -> ClickHouse server equals the embedded pipeline, row for row."""

from __future__ import annotations

import pytest

from tests.distributed.helpers import SIM_START, embedded_result, server_result, wait_for

pytestmark = pytest.mark.distributed
POPULATION, DAYS, SEED = 3000, 1, 7


def test_two_workers_store_exactly_what_the_embedded_pipeline_stores(pipeline, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pipeline.cli("produce", "--simulate", "--population", str(POPULATION), "--days", str(DAYS), "--seed", str(SEED),
                 "--start", SIM_START)
    pipeline.start_worker(tmp_path / "w1.log")
    pipeline.start_worker(tmp_path / "w2.log")
    expected = embedded_result(POPULATION, DAYS, SEED, pipeline.keys)
    assert len(expected["visits"]) > 1000
    got = wait_for(lambda: server_result(pipeline.servers.store_url), lambda r: r == expected, timeout_s=240)
    logs = "\n".join((tmp_path / f"w{i}.log").read_text(errors="replace")[-1500:] for i in (1, 2))
    missing, extra = sorted(expected["visits"] - got["visits"]), sorted(got["visits"] - expected["visits"])
    letters = f"dead letters {got['dead_letters']} (expected {expected['dead_letters']})"
    detail = f"missing {len(missing)} {missing[:4]}, extra {len(extra)} {extra[:4]}; {letters}"
    assert not missing and not extra, f"{detail}\n{logs}"
    assert got["checkins"] == expected["checkins"]
    assert got["dead_letters"] == expected["dead_letters"]
