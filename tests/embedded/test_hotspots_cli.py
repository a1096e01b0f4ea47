"""`qrtrace report hotspots` end to end on a fixture computed by hand (tests/fixtures/hotspots/README.md):
venues and check-ins through the real edge, processor and writer into chDB, then the report's JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.embedded.conftest import REPLAY_2021, run_cli

pytestmark = pytest.mark.embedded

FIXTURE = REPO / "tests" / "fixtures" / "hotspots"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text(encoding="utf-8"))
AS_OF = ("--as-of", "2021-07-22T00:00:00+07:00")
VENUE_KEYS = (
    "venue_id",
    "commune_code",
    "category",
    "capacity",
    "windows",
    "over_capacity_windows",
    "peak_present",
    "peak_ratio",
    "peak_at",
    "arrivals",
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("hotspots") / "store"
    run_cli("venues", "import", str(FIXTURE / "venues.csv"), store=store, env=REPLAY_2021)
    run_cli("ingest", str(FIXTURE / "events.jsonl"), store=store, env=REPLAY_2021)
    return store


def _report(store: Path, *args: str) -> dict:
    return json.loads(run_cli("report", "hotspots", *AS_OF, "--json", *args, store=store, env=REPLAY_2021).stdout)


def _hours(category: dict) -> dict:
    """A category's non-empty hours, in the fixture's sparse form."""
    cells = zip(category["arrivals"], category["mean_present"], category["peak_present"], strict=True)
    return {
        str(h): {"arrivals": a, "mean_present": m, "peak_present": p}
        for h, (a, m, p) in enumerate(cells)
        if a or m or p
    }


def _categories(report: dict) -> list[dict]:
    return [
        {
            "category": c["category"],
            "registered": c["registered"],
            "busiest_hour": c["busiest_hour"],
            "hours": _hours(c),
        }
        for c in report["categories"]
    ]


def test_the_report_equals_the_hand_computed_fixture(store: Path) -> None:
    report = _report(store, "--days", "7")
    assert (report["since"], report["as_of"]) == (EXPECTED["since"], EXPECTED["as_of"])
    assert report["venues_total"] == EXPECTED["venues_total"]
    assert [{k: v[k] for k in VENUE_KEYS} for v in report["venues"]] == EXPECTED["venues"]
    assert [v["name"] for v in report["venues"]] == ["Karaoke Ánh Dương", "Karaoke Minh Thanh", "Quán phở Trung Yên"]
    assert _categories(report) == EXPECTED["categories"]
    keys = ("commune_code", "venues", "venues_over_capacity", "over_capacity_windows", "peak_ratio")
    assert [{k: c[k] for k in keys} for c in report["communes"]] == EXPECTED["communes"]


def test_one_commune_limit_and_a_longer_period(store: Path) -> None:
    one = _report(store, "--commune", "02542")
    assert [v["venue_id"] for v in one["venues"]] == EXPECTED["commune_02542"]["venues"]
    assert _categories(one) == EXPECTED["commune_02542"]["categories"]
    assert [v["venue_id"] for v in _report(store, "--limit", "1")["venues"]] == ["HS1"]
    # 14 days reach back to the visit of 2021-07-10 at HS1 (20:00-20:20: two more windows, one arrival)
    longer = _report(store, "--days", "14")
    hs1 = next(v for v in longer["venues"] if v["venue_id"] == "HS1")
    assert (hs1["windows"], hs1["arrivals"], hs1["over_capacity_windows"]) == (5, 4, 1)


def test_the_tables_and_a_bad_commune(store: Path) -> None:
    shown = run_cli("report", "hotspots", *AS_OF, store=store, env=REPLAY_2021).stdout
    assert "Điểm tập trung đông người" in shown and "Karaoke Ánh Dương" in shown and "150%" in shown
    english = run_cli("report", "hotspots", *AS_OF, "--lang", "en", store=store, env=REPLAY_2021).stdout
    assert "Crowding hotspots" in english and "Busiest hours" in english
    bad = run_cli("report", "hotspots", "--commune", "99999", store=store, env=REPLAY_2021, check=False)
    assert bad.returncode != 0 and bad.stderr.strip().count("\n") == 0 and "99999" in bad.stderr
