"""The follow-up page on a phone (390 x 844) in headless Chromium: a health station signs in, sees only its
commune's contacts as cards, sets one reached -> quarantined -> tested positive (confirmed), and the case is
declared. Screenshot follow-up-phone.png (test-artifacts/browser/)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from tests.console.conftest import ARTIFACTS, Console

pytestmark = pytest.mark.browser
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, never a proxy


def _call(console: Console, role: str, path: str, body: dict | None = None) -> dict:
    headers = {"Authorization": f"Bearer {console.tokens[role]}", "Content-Type": "application/json"}
    data = json.dumps(body).encode() if body is not None else None
    with _HTTP.open(urllib.request.Request(f"{console.url}{path}", data=data, headers=headers), timeout=60) as resp:
        return json.loads(resp.read())


@pytest.fixture
def phone(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")  # fmt: skip
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.set_default_timeout(20_000)
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _posting(phone, button) -> None:  # type: ignore[no-untyped-def]
    """Click `button`, wait for the follow-up POST it sends and for the list read after it (the card re-drawn)."""
    with phone.expect_response(lambda r: r.request.method == "GET" and "/api/follow-ups?" in r.url) as listed:
        with phone.expect_response(lambda r: r.request.method == "POST" and "/api/follow-ups/" in r.url) as answer:
            button.click()
        assert answer.value.ok, answer.value.text()
    assert listed.value.ok
    phone.wait_for_load_state("networkidle")


def _trace(console: Console, case_ids: list[str]) -> dict:
    """Run a trace as the epidemiologist and wait (bounded) until it is done; its result, with pseudonyms."""
    trace = _call(console, "epidemiologist", "api/traces", {"case_ids": case_ids, "purpose": "kiểm thử theo dõi"})
    for _ in range(600):  # bounded: a minute at most
        if _call(console, "epidemiologist", f"api/traces/{trace['trace_id']}")["status"] != "running":
            break
        time.sleep(0.1)
    return _call(console, "admin", f"api/traces/{trace['trace_id']}/result?purpose=kiem+thu")


def _seed_station_case(console: Console) -> None:
    """A case of our own at the demo scanner's venue (the station's commune), with three people beside it: the
    demo case's cohort follows the clock, so the station's list must not depend on where it went."""
    venue = _call(console, "scanner", "api/me")["venues"][0]
    day = (datetime.now(UTC) - timedelta(days=5)).astimezone(timezone(timedelta(hours=7))).date().isoformat()
    people = ["0912000650", "0912000651", "0912000652", "0912000653"]
    scans = [{"scan_id": f"fu-phone-{p}-{d}", "venue_id": venue, "person_id": p, "direction": d,
              "event_time": f"{day}T{h}:00:00+07:00", "mode": "personal_qr", "scanner_id": "fu-browser"}
             for p in people for d, h in (("in", "09"), ("out", "10"))]  # fmt: skip
    _call(console, "scanner", "api/checkins", scans)
    try:
        _call(console, "epidemiologist", "api/cases", {"case_id": "FU-PHONE-1", "person_id": people[0],
                                                       "infectious_from": f"{day}T00:00:00+07:00",
                                                       "infectious_to": f"{day}T23:59:00+07:00"})  # fmt: skip
    except urllib.error.HTTPError as exc:  # 409: declared by an earlier run of this test
        assert exc.code == 409, exc
    for _ in range(40):  # bounded: the server's trace index follows the visit feed twice a second
        if len(_trace(console, ["FU-PHONE-1"])["cases"][0]["contacts"]) >= len(people) - 1:
            return
        time.sleep(0.25)
    raise AssertionError("the station case's scans never reached the trace index")


def test_a_health_station_follows_up_on_a_phone(phone, console: Console) -> None:  # type: ignore[no-untyped-def]
    _seed_station_case(console)
    trace = _call(console, "epidemiologist", "api/traces", {"case_ids": ["DEMO-F0-1"], "purpose": "kiểm thử theo dõi"})
    for _ in range(600):  # bounded: a minute at most
        if _call(console, "epidemiologist", f"api/traces/{trace['trace_id']}")["status"] != "running":
            break
        time.sleep(0.1)
    everyone = _call(console, "epidemiologist", "api/follow-ups")["follow_ups"]
    me = _call(console, "health_station", "api/me")
    mine = [r for r in everyone if r["commune_code"] == me["commune_code"]]
    others = [r for r in everyone if r["commune_code"] != me["commune_code"]]
    assert mine and others

    phone.goto(console.sign_in_link("health_station"))
    phone.wait_for_selector("#who:not(:empty)")
    phone.goto(f"{console.url}#followup")
    phone.wait_for_load_state("networkidle")  # the sign-in's own first load and the page's have both rendered
    cards = phone.locator("#fu-list .fu-card")
    expect(cards).to_have_count(len(mine))
    shown = {cards.nth(i).get_attribute("data-id") for i in range(cards.count())}
    assert shown == {r["follow_up_id"] for r in mine}
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # cards, not a wide table
    assert phone.locator("#nav a[data-page=trace]").is_hidden()  # a health station does not trace
    fid = min(mine, key=lambda r: r["hop"])["follow_up_id"]
    card = phone.locator(f".fu-card[data-id='{fid}']")
    _posting(phone, card.locator("button.fu-reached"))
    expect(card.locator(".fu-state")).to_have_text("Đã liên lạc")
    card.locator("input.fu-date").fill("2026-12-01")
    _posting(phone, card.locator("button.fu-quarantined"))
    expect(card.locator(".fu-state")).to_have_text("Đang cách ly")
    expect(card.locator(".fu-dates")).to_contain_text("1/12/2026")
    card.locator("input.fu-note").fill("Cách ly tại nhà, gọi lại sau 3 ngày")
    _posting(phone, card.locator("button.fu-save-note"))
    expect(card.locator(".fu-notes")).to_have_text("Cách ly tại nhà, gọi lại sau 3 ngày")
    phone.once("dialog", lambda dialog: dialog.accept())
    _posting(phone, card.locator("button.fu-tested_positive"))
    expect(card.locator(".fu-state")).to_have_text("Xét nghiệm dương tính")
    expect(card.locator(".fu-declared")).to_contain_text("cán bộ dịch tễ tỉnh sẽ truy vết")
    case_id = card.locator(".fu-declared b").inner_text()
    assert case_id in {c["case_id"] for c in _call(console, "epidemiologist", "api/cases")}
    card.locator("details.fu-history summary").click()
    # reached; quarantined with its two dates; the note; tested_positive with its date; the new case's id
    expect(card.locator("details.fu-history li")).to_have_count(8)
    card.scroll_into_view_if_needed()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(ARTIFACTS / "follow-up-phone.png"), full_page=False)
    phone.click("#lang")
    expect(card.locator(".fu-state")).to_have_text("Tested positive")
