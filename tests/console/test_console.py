"""Each console page in headless Chromium against `qrtrace serve` on demo data: the main action, what the
page then shows, and a screenshot per test (test-artifacts/browser/). The console's Content-Security-Policy
stays on (no `wait_for_function` strings, which it rightly refuses to evaluate)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from tests.console.conftest import ARTIFACTS, Console

pytestmark = pytest.mark.browser
VN = timezone(timedelta(hours=7))
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, never a proxy


def _sign_in(page, console: Console, role: str, hash_: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(console.sign_in_link(role))
    page.wait_for_selector("#who:not(:empty)")
    assert "#token" not in page.url  # the token leaves the address bar
    page.goto(f"{console.url}#{hash_}")


def test_coverage_page_filters_by_commune(page, console: Console) -> None:  # type: ignore[no-untyped-def]
    _sign_in(page, console, "district_officer", "coverage")
    yesterday = (datetime.now(VN) - timedelta(days=1)).date().isoformat()
    page.fill("#cov-date", yesterday)  # the demo's last simulated day
    page.click("#coverage-filters button[type=submit]")
    page.wait_for_selector(f"#page-coverage[data-shown-date='{yesterday}']", state="attached")  # not the first load
    expect(page.locator("#cov-matrix tr.commune-row")).to_have_count(31)
    assert page.locator("#cov-trend svg circle").count() == 14
    assert int(page.inner_text("[data-kpi=active_24h] b").replace(".", "")) > 0
    zero_cells = page.locator("#cov-matrix .cell.zero")
    assert zero_cells.count() >= 1  # some commune x category has registered venues and no scan
    colour = zero_cells.first.evaluate("el => getComputedStyle(el).backgroundColor")
    assert colour == "rgb(198, 40, 40)"  # the zero-scan cells stand out in red
    assert page.locator("#cov-bars svg rect").count() == 31
    assert page.locator("#cov-offices tr.office-row").count() == 4  # by overseeing office
    page.screenshot(path=str(ARTIFACTS / "coverage.png"), full_page=True)  # the README shows the whole report

    page.select_option("#cov-commune", label="Tân Trào")
    page.click("#coverage-filters button[type=submit]")
    expect(page.locator("#cov-matrix tr.commune-row")).to_have_count(1)
    assert page.inner_text("#cov-matrix tr.commune-row td") == "Tân Trào"
    assert page.locator("#cov-bars svg rect").count() == 1


def test_trace_page_runs_a_trace_and_downloads_the_call_list(page, console: Console, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _sign_in(page, console, "epidemiologist", "trace")
    page.wait_for_selector("#trace-case option[value='DEMO-F0-1']", state="attached")
    page.select_option("#trace-case", "DEMO-F0-1")
    page.fill("#trace-purpose", "kiểm thử trình duyệt")
    page.click("#trace-run")
    page.wait_for_selector("#trace-counts b")
    counts = page.inner_text("#trace-counts")
    assert "F1:" in counts and "F2:" in counts
    assert page.inner_text("#trace-progress .label") in ("Xong", "Done")
    rows = page.locator("#trace-table tr.hop-row")
    assert rows.count() > 10 and rows.first.get_attribute("data-hop") == "1"
    for hop in ("0", "1", "2"):
        assert page.locator(f"#trace-graph g.node[data-hop='{hop}']").count() >= 1
    assert page.locator("#trace-graph path").count() >= 10  # edges: who exposed whom
    # risk tiers: counted, close contacts first in each hop, the graph coloured by tier
    assert "Tiếp xúc gần:" in counts and "qrtrace-2026 v1" in counts
    risks = rows.evaluate_all("rs => rs.map(r => [r.dataset.hop, r.dataset.risk])")
    assert {r for _, r in risks} <= {"close", "casual"} and "close" in {r for _, r in risks}
    for hop in {h for h, _ in risks}:
        tiers = [r for h, r in risks if h == hop]
        assert tiers == sorted(tiers, key=lambda r: r == "casual"), f"F{hop}: close contacts come first"
    close_edge = page.locator("#trace-graph path.edge.close").first
    assert close_edge.evaluate("el => getComputedStyle(el).stroke") == "rgb(211, 47, 47)"
    assert page.locator("#trace-graph g.node[data-risk='close']").count() >= 1
    page.set_viewport_size({"width": 1400, "height": 1500})  # the forms, the counts and the graph's top
    page.screenshot(path=str(ARTIFACTS / "trace.png"), full_page=False)
    with page.expect_download() as info:
        page.click("#trace-csv")
    saved = tmp_path / "call-list.csv"
    info.value.save_as(saved)
    lines = saved.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0].startswith("Mã ca,Ca bệnh (F0),Mức,Người tiếp xúc,Số điện thoại") and len(lines) > 10
    assert lines[0].endswith("Mức nguy cơ,Nguy cơ lần tiếp xúc")
    # close contacts only as F2 sources: never more F2 than with every contact
    f2_all = int(page.inner_text("#trace-counts").split("F2:")[1].split()[0].replace(",", "").replace(".", ""))
    page.select_option("#trace-sources", "close")
    page.click("#trace-run")
    page.wait_for_function("() => !document.querySelector('#trace-run').disabled")
    narrowed = page.inner_text("#trace-counts")
    f2_close = int(narrowed.split("F2:")[1].split()[0].replace(",", "").replace(".", "")) if "F2:" in narrowed else 0
    assert f2_close <= f2_all


def test_trace_page_shows_errors_as_sentences(page, console: Console) -> None:  # type: ignore[no-untyped-def]
    _sign_in(page, console, "epidemiologist", "trace")
    page.fill("#case-id", "BROWSER-1")
    page.fill("#case-person", "0912345678")
    page.fill("#case-from", "2026-11-22T08:00")
    page.fill("#case-to", "2026-11-20T08:00")
    page.click("#case-form button[type=submit]")
    page.wait_for_selector("#message:not([hidden])")
    message = page.inner_text("#message")
    assert message.startswith("Lỗi: Yêu cầu không hợp lệ.") and "ends before it starts" in message


def test_venue_page_registers_a_venue_and_downloads_its_poster(page, console: Console, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _sign_in(page, console, "commune_officer", "venues")
    page.wait_for_selector("#venues-list tr[data-venue]")
    page.fill("#venue-id", "BROWSER-CAFE")
    page.fill("#venue-name", "Quán cà phê Bên Suối")
    page.select_option("#venue-category", "restaurant")
    page.fill("#venue-capacity", "35")
    page.click("#venue-form button[type=submit]")
    page.wait_for_selector("#venues-list tr[data-venue='BROWSER-CAFE']")
    assert "BROWSER-CAFE" in page.inner_text("#message")
    with page.expect_download() as info:
        page.click("#venues-list tr[data-venue='BROWSER-CAFE'] button.poster")
    saved = tmp_path / "poster.pdf"
    info.value.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF-") and info.value.suggested_filename == "poster-BROWSER-CAFE.pdf"
    page.screenshot(path=str(ARTIFACTS / "venues.png"), full_page=False)


def test_venue_page_adds_a_zone_and_downloads_its_poster(page, console: Console, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _sign_in(page, console, "commune_officer", "venues")
    row = page.locator("#venues-list tr[data-venue]").first
    row.wait_for()
    venue_id = row.get_attribute("data-venue")
    page.once("dialog", lambda dialog: dialog.accept("Khu trình duyệt"))
    row.locator("button.add-zone").click()
    page.wait_for_selector(f"#venues-list tr[data-venue='{venue_id}'] button.zone-poster[data-zone='Khu trình duyệt']")
    with page.expect_download() as info:
        page.click(f"#venues-list tr[data-venue='{venue_id}'] button.zone-poster[data-zone='Khu trình duyệt']")
    saved = tmp_path / "zone-poster.pdf"
    info.value.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF-")


def test_operations_page_is_honest_in_embedded_mode(page, console: Console) -> None:  # type: ignore[no-untyped-def]
    _sign_in(page, console, "admin", "operations")
    page.wait_for_selector("#workers-state")
    assert page.inner_text("#workers-state") == "không chạy"
    assert "Chế độ nhúng" in page.inner_text("#ops-workers")
    assert page.locator("#ops-dead svg rect").count() >= 3  # dead letters by reason
    assert "checkins" in page.inner_text("#ops-size")
    page.screenshot(path=str(ARTIFACTS / "operations.png"), full_page=False)


def _get(url: str, path: str, token: str) -> dict:
    """GET a JSON route of the running server with a token (not through the browser)."""
    request = urllib.request.Request(f"{url}{path}", headers={"Authorization": f"Bearer {token}"})
    with _HTTP.open(request, timeout=30) as resp:
        return json.loads(resp.read())


def _post(url: str, token: str, body: object) -> tuple[int, dict]:
    """One scanner request to the running server (not through the browser): its status and JSON answer."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(f"{url}api/checkins", data=json.dumps(body).encode(), headers=headers)
    try:
        with _HTTP.open(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_operations_page_shows_the_front_door(page, console: Console) -> None:  # type: ignore[no-untyped-def]
    """After a scanner's batch with one dead letter (202) and a body that is not a list (422), the operations
    page's front-door panel shows those answers by status, 2 scans accepted and 1 dead-lettered, answer
    times in ms, an empty queue, every 503 cause in words (none happened) and what a 202 means in embedded
    mode; in Vietnamese first, then in English. The server's counters live for the session, so the figures
    expected are those of /api/operations before this test plus what it sent."""
    token = console.tokens["scanner"]
    venue = _get(console.url, "api/me", token)["venues"][0]
    before = _get(console.url, "api/operations", console.tokens["admin"])["front_door"]
    day = (datetime.now(UTC) - timedelta(days=10)).astimezone(VN).date().isoformat()  # before the demo's days
    scans = [{"scan_id": f"browser-front-{n}", "venue_id": venue, "person_id": f"091204000{n}", "event_time":
              f"{day}T09:0{n}:00+07:00", "direction": direction, "mode": "personal_qr", "scanner_id": "browser"}
             for n, direction in enumerate(("in", "in", "sideways"))]  # fmt: skip
    status, answer = _post(console.url, token, scans)
    assert status == 202 and (answer["accepted"], answer["dead_lettered"]) == (2, 1), answer
    assert _post(console.url, token, {"scan_id": "not-a-list"})[0] == 422

    _sign_in(page, console, "admin", "operations")
    page.wait_for_selector("#ops-front [data-front-kpi=accepted]")
    front = page.locator("#ops-front")
    assert front.locator("h2").inner_text().startswith("Cổng nhận lượt quét")
    assert page.inner_text("#front-kind") == "nhúng"
    assert "202 nghĩa là lượt quét đã được lưu vào kho" in page.inner_text("#front-meaning")
    kpi = {k: page.inner_text(f"#ops-front [data-front-kpi={k}] b") for k in
           ("requests", "accepted", "dead_lettered", "answer", "queued")}  # fmt: skip
    figures = tuple(int(kpi[k].replace(".", "")) for k in ("requests", "accepted", "dead_lettered", "queued"))
    scans = before["scans"]
    assert figures == (sum(before["requests"].values()) + 2, scans.get("accepted", 0) + 2,
                       scans.get("dead_lettered", 0) + 1, 0), kpi  # fmt: skip
    assert kpi["answer"].startswith("≤ ") and kpi["answer"].endswith(" ms") and "–" not in kpi["answer"], kpi
    labels = page.locator("#front-status svg text").all_text_contents()
    assert "202 đã nhận" in labels and "422 sai định dạng" in labels, labels
    bars = page.locator("#front-status svg rect")
    assert bars.count() == len({*before["requests"], "202", "422"})  # one bar per status answered
    assert bars.first.get_attribute("fill") == "#2e7d32"  # 202, the lowest status, first and in green
    causes = page.locator("#front-causes tr[data-cause]")
    expect(causes).to_have_count(6)  # every cause of a 503 in words, whether or not it happened
    assert "Quá tải" in causes.first.inner_text() and "overloaded" in causes.first.inner_text()
    assert page.locator("#front-causes tr.nonzero").count() == len(before["unavailable"])  # none from this test
    front.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "operations-front-door.png"), full_page=False)

    page.click("#lang")
    expect(front.locator("h2")).to_contain_text("Front door (scanners)")
    assert "202 answer means the check-ins are stored" in page.inner_text("#front-meaning")
    assert "Overloaded" in page.locator("#front-causes tr[data-cause=overloaded]").inner_text()
    assert "422 malformed" in page.locator("#front-status svg text").all_text_contents()


def test_english_labels_and_role_aware_navigation(page, console: Console) -> None:  # type: ignore[no-untyped-def]
    _sign_in(page, console, "commune_officer", "coverage")
    page.wait_for_selector("#cov-matrix tr.commune-row")
    visible = [a.inner_text() for a in page.locator("#nav a:visible").all()]
    # no trace, operations or audit for a commune officer; its commune's follow-up list (pseudonyms) it reads
    assert visible == ["Độ phủ QR", "Địa điểm", "Điểm đông người", "Theo dõi F1/F2"]
    page.click("#lang")
    expect(page.locator("#nav a[data-page=coverage]")).to_have_text("QR coverage")
    assert page.inner_text("h1:visible") == "QR deployment by commune and venue category"


def test_a_bad_token_stays_on_the_sign_in_page(page, console: Console) -> None:  # type: ignore[no-untyped-def]
    page.goto(console.url)
    page.fill("#token", "qrt_0000_not-a-real-token")
    page.click("#signin-form button")
    page.wait_for_selector("#message:not([hidden])")
    assert "Mã truy cập không hợp lệ" in page.inner_text("#message") and "not valid" in page.inner_text("#message")
    assert page.is_visible("#page-signin")
