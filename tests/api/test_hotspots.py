"""GET /api/reports/hotspots over the demo store: consistent with the stored occupancy windows, narrowed to
the caller's area, and bad parameters answered with one sentence."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from qrtrace.api.service import ApiService
from qrtrace.stream_processors.batch import US_PER_DAY
from tests.api.conftest import World

pytestmark = pytest.mark.api

WINDOWS_OVER = """
SELECT venue_id, count() AS n FROM qrtrace.occupancy FINAL
WHERE over_capacity = 1 AND present > 0 AND window_start_us >= {since_us:Int64} AND window_start_us < {as_of_us:Int64}
GROUP BY venue_id
"""


def _get(client: TestClient, world: World, who: str, **params: object) -> dict:
    resp = client.get("/api/reports/hotspots", params=params, headers=world.auth(who))
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_the_ranking_matches_the_stored_windows(client: TestClient, world: World, service: ApiService) -> None:
    as_of = world.demo_trace["rules"]["until"]  # the end of the demo's last simulated day
    report = _get(client, world, "district_officer", as_of=as_of, days=7, limit=200)
    assert report["venues"] and report["categories"] and report["venues_total"] >= len(report["venues"]) == 200
    with service._lock:
        stored = service.rt.store.query(WINDOWS_OVER, {"since_us": report["since_us"], "as_of_us": report["as_of_us"]})
    over = dict(zip(stored["venue_id"], stored["n"], strict=True))
    assert len(over) < 200  # so every venue ever over capacity is in the first 200
    assert {v["venue_id"]: v["over_capacity_windows"] for v in report["venues"] if v["over_capacity_windows"]} == over
    assert over, "the demo has crowded windows: a ranking of zeros would prove nothing"
    keys = [(-v["over_capacity_windows"], -(v["peak_ratio"] or 0), -v["peak_present"], v["venue_id"])
            for v in report["venues"]]  # fmt: skip
    assert keys == sorted(keys)
    assert all(v["peak_present"] > v["capacity"] for v in report["venues"] if v["over_capacity_windows"])
    assert report["as_of_us"] - report["since_us"] == 7 * US_PER_DAY
    for c in report["categories"]:
        assert len(c["arrivals"]) == len(c["mean_present"]) == len(c["peak_present"]) == 24
        assert c["mean_present"][c["busiest_hour"]] == max(c["mean_present"])


def test_a_commune_is_the_districts_ranking_cut_to_it(client: TestClient, world: World) -> None:
    as_of = world.demo_trace["rules"]["until"]
    district = _get(client, world, "district_officer", as_of=as_of, limit=200)
    mine = _get(client, world, "commune_officer", as_of=as_of, limit=200, commune=world.commune_code)
    cut = [v["venue_id"] for v in district["venues"] if v["commune_code"] == world.commune_code]
    assert cut and [v["venue_id"] for v in mine["venues"]][: len(cut)] == cut  # the district's first 200, cut
    assert {v["commune_code"] for v in mine["venues"]} == {world.commune_code}
    assert [c["commune_code"] for c in mine["communes"]] == [world.commune_code]
    assert _get(client, world, "commune_officer", as_of=as_of, limit=200) == mine  # no commune: its own
    other = _get(client, world, "other_district_officer", as_of=as_of, limit=200)
    assert other["venues"] == [] and other["communes"] == []  # its venues never scanned
    english = _get(client, world, "epidemiologist", as_of=as_of, lang="en", limit=1)
    assert len(english["venues"]) == 1 and english["venues"][0]["venue_id"] == district["venues"][0]["venue_id"]


@pytest.mark.parametrize("params", [{"days": 0}, {"days": 61}, {"limit": 0}, {"as_of": "yesterday"}])
def test_bad_parameters_are_one_sentence(client: TestClient, world: World, params: dict) -> None:
    resp = client.get("/api/reports/hotspots", params=params, headers=world.auth("epidemiologist"))
    assert resp.status_code == 422 and set(resp.json()) == {"error"}, resp.text
