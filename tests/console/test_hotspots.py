"""The crowding hotspots page (api/console/hotspots.js) in headless Chromium against `qrtrace serve` on demo
data: the bar chart of venues by windows over capacity, the hour x category heatmap, the ranking, the
commune filter, a commune officer's own commune only; screenshot hotspots.png."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.console.conftest import ARTIFACTS, Console
from tests.console.test_console import _get, _sign_in

pytestmark = pytest.mark.browser


def test_hotspots_page_ranks_venues_and_filters_by_commune(page, console: Console) -> None:  # type: ignore[no-untyped-def]
    token = console.tokens["district_officer"]
    want = _get(console.url, "api/reports/hotspots?days=7&limit=50", token)
    assert want["venues"], "the demo has crowded venues"
    _sign_in(page, console, "district_officer", "hotspots")
    page.wait_for_selector("#page-hotspots[data-shown='7||vi']", state="attached")
    rows = page.locator("#hot-table tr[data-venue]")
    expect(rows).to_have_count(len(want["venues"]))
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.venue)") == [v["venue_id"] for v in want["venues"]]
    assert page.locator("#hot-bars svg rect").count() == min(15, len(want["venues"]))
    first = want["venues"][0]
    assert first["name"][:26] in page.locator("#hot-bars svg text").all_text_contents()
    over = sum(c["over_capacity_windows"] for c in want["communes"])
    assert page.locator("#hot-kpis .kpi b").nth(1).inner_text().replace(".", "") == str(over)
    heat = page.locator("#hot-heatmap rect.heat")
    assert heat.count() == 24 * len(want["categories"])
    lit = heat.evaluate_all("rs => rs.filter(r => Number(r.getAttribute('fill-opacity')) > 0).length")
    assert lit >= len(want["categories"])  # every category shown has a busy hour
    assert page.locator("#hot-hours svg rect").count() == 24
    if first["over_capacity_windows"]:  # a venue over capacity stands out in red
        colour = rows.first.locator("td").nth(4).evaluate("el => getComputedStyle(el).color")
        assert colour == "rgb(183, 28, 28)"
    page.screenshot(path=str(ARTIFACTS / "hotspots.png"), full_page=True)

    commune = first["commune_code"]
    page.select_option("#hot-commune", value=commune)
    page.wait_for_selector(f"#page-hotspots[data-shown='7|{commune}|vi']", state="attached")
    names = set(rows.evaluate_all("rs => rs.map(r => r.children[3].textContent)"))
    assert names == {first["commune_name"]}
    page.select_option("#hot-days", value="1")
    page.wait_for_selector(f"#page-hotspots[data-shown='1|{commune}|vi']", state="attached")


def test_a_commune_officer_sees_its_commune_only(page, console: Console) -> None:  # type: ignore[no-untyped-def]
    mine = _get(console.url, "api/me", console.tokens["commune_officer"])
    _sign_in(page, console, "commune_officer", "hotspots")
    page.wait_for_selector("#page-hotspots[data-shown='7||vi']", state="attached")
    communes = page.locator("#hot-communes tr td:first-child").all_text_contents()
    assert len(communes) <= 1
    codes = page.locator("#hot-commune option").evaluate_all("os => os.map(o => o.value).filter(Boolean)")
    assert codes == [mine["commune_code"]]  # the filter offers its own commune only
    page.click("#lang")
    expect(page.locator("h1:visible")).to_have_text("Crowding hotspots (15-minute windows)")
    page.wait_for_selector("#page-hotspots[data-shown='7||en']", state="attached")
