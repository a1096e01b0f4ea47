"""The public exposure-site page (/public/) in headless Chromium against `qrtrace serve` on demo data: no
token, Vietnamese first, English one click away, filters by commune and day, readable on a phone. Its
Content-Security-Policy stays on. Screenshots in test-artifacts/browser/ (one copied to docs/screenshots/)."""

from __future__ import annotations

import json
import shutil
import urllib.parse
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.conftest import REPO
from tests.console.conftest import ARTIFACTS, Console

pytestmark = pytest.mark.browser
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, never a proxy


def _public(console: Console, **params: str) -> list[dict]:
    url = f"{console.url}public/exposure-sites.json?{urllib.parse.urlencode(params)}"
    with _HTTP.open(url, timeout=30) as resp:
        return json.loads(resp.read())["sites"]


@pytest.fixture(scope="module")
def sites(console: Console) -> list[dict]:
    """The demo case's sites, published through the API by the demo epidemiologist."""
    body = json.dumps({"case_id": "DEMO-F0-1", "purpose": "public page test"}).encode()
    request = urllib.request.Request(f"{console.url}api/exposure-sites", data=body, headers={
        "Authorization": f"Bearer {console.tokens['epidemiologist']}", "Content-Type": "application/json"})
    with _HTTP.open(request, timeout=60) as resp:
        assert resp.status == 201
        published = json.loads(resp.read())["sites"]
    assert published
    return published


def _loaded(page, fragment: str = "") -> None:  # type: ignore[no-untyped-def]
    selector = f"#sites[data-loaded*='{fragment}']" if fragment else "#sites[data-loaded]"  # *='' matches nothing
    page.wait_for_selector(selector, state="attached")


def test_the_public_page_shows_the_sites_in_vietnamese_then_english(page, console: Console,
                                                                    sites: list[dict]) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    page.goto(f"{console.url}public/")  # no token, no sign-in
    _loaded(page, "lang=vi")
    shown = _public(console)
    expect(page.locator("#sites li.site")).to_have_count(len(shown))
    assert page.inner_text("#title") == "Địa điểm có ca bệnh đã đến"
    assert page.evaluate("document.documentElement.lang") == "vi"
    first = page.locator(f"#sites li.site[data-site-id='{sites[0]['site_id']}']")
    assert first.locator("h2").inner_text() == sites[0]["venue_name"]
    when = first.locator(".when").inner_text()
    day = sites[0]["from"][:10]
    assert when.startswith(f"{day[8:10]}/{day[5:7]}/{day[:4]}: từ {sites[0]['from'][11:16]} đến")
    assert "tự theo dõi sức khoẻ" in first.inner_text()
    assert page.inner_text("#status") == f"{len(shown)} địa điểm"

    page.click("#lang-toggle")
    _loaded(page, "lang=en")
    assert page.inner_text("#title") == "Places a positive case visited"
    assert page.evaluate("document.documentElement.lang") == "en" and "lang=en" in page.url
    first = page.locator(f"#sites li.site[data-site-id='{sites[0]['site_id']}']")
    english = _public(console, lang="en")[0]
    assert english["category_name"] in first.inner_text() and "watch your health" in first.inner_text()
    assert first.locator(".when").inner_text().startswith(f"{day[8:10]}/{day[5:7]}/{day[:4]}: from ")
    page.screenshot(path=str(ARTIFACTS / "public-sites-desktop.png"), full_page=True)


def test_the_public_page_filters_by_commune_and_day(page, console: Console, sites: list[dict]) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{console.url}public/")
    _loaded(page)
    commune = sites[0]["commune_code"]
    page.select_option("#f-commune", commune)
    page.click("#f-show")
    _loaded(page, f"commune={commune}")
    cards = page.locator("#sites li.site")
    expect(cards).to_have_count(len(_public(console, commune=commune)))
    assert {c.get_attribute("data-commune") for c in cards.all()} == {commune}

    page.click("#f-clear")
    _loaded(page, "lang=vi")
    day = sites[-1]["from"][:10]
    page.fill("#f-date", day)
    page.click("#f-show")
    _loaded(page, f"date={day}")
    expect(cards).to_have_count(len(_public(console, date=day)))
    assert sites[-1]["site_id"] in [c.get_attribute("data-site-id") for c in cards.all()]

    page.fill("#f-date", "2001-01-01")
    page.click("#f-show")
    _loaded(page, "date=2001-01-01")
    expect(cards).to_have_count(0)
    assert page.inner_text("#status") == "Không có địa điểm nào khớp bộ lọc."


def test_the_public_page_reads_well_on_a_phone(browser, console: Console, sites: list[dict]) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")  # fmt: skip
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{console.url}public/")
        _loaded(page)
        assert page.locator("#sites li.site").count() == len(_public(console))
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
        size = page.evaluate("parseFloat(getComputedStyle(document.querySelector('#sites li.site h2')).fontSize)")
        body = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
        assert size >= 20 and body >= 18  # large text
        box = page.locator("#sites li.site").first.bounding_box()
        assert box is not None and box["width"] >= 330  # one card a row, the width of the phone
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "public-sites.png"
        page.screenshot(path=str(shot), full_page=False)
        (REPO / "docs" / "screenshots").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, REPO / "docs" / "screenshots" / "public-sites.png")
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
