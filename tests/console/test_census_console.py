"""The coverage page with the deployment census in headless Chromium: a commune officer sees required /
registered / scanning in the matrix and the establishments not registered, uploads a census file (a bad
row is reported by row and column) and sees the new establishment in the list. Screenshot:
test-artifacts/browser/coverage-census.png."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.console.conftest import ARTIFACTS, Console
from tests.console.test_console import _sign_in

pytestmark = pytest.mark.browser


def test_a_commune_officer_uploads_a_census_and_sees_the_denominator(page, console: Console,
                                                                     tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    _sign_in(page, console, "commune_officer", "coverage")
    expect(page.locator("#cov-matrix tr.commune-row")).to_have_count(1)
    expect(page.locator("#cov-matrix tr.census-row")).to_have_count(1)  # the demo commune has a census
    cells = page.locator("#cov-matrix .cell.census")
    assert cells.count() >= 1
    assert all(re.fullmatch(r"\d+/\d+/\d+", t) for t in cells.all_inner_texts())  # required/registered/scanning
    assert "phải triển khai / đã đăng ký / có quét" in page.inner_text("#page-coverage .card h2 >> nth=2").lower()
    assert int(page.inner_text("[data-kpi=required] b").replace(".", "")) > 0
    before = page.locator("#cov-unregistered tr.unregistered-row").count()
    assert before >= 1  # the demo's census has establishments not registered yet

    commune = page.eval_on_selector("#cov-matrix tr.commune-row", "el => el.dataset.commune")
    census = tmp_path / "dieu-tra.csv"
    census.write_text("Mã cơ sở,Tên cơ sở,Loại hình,Mã xã,Địa chỉ\n"
                      f"BR-1,Tiệm may Hồng,Cửa hàng cung cấp các dịch vụ thiết yếu,{commune},Tổ 7\n"
                      f"BR-2,Không loại hình,xyz,{commune},Tổ 8\n", encoding="utf-8")  # fmt: skip
    expect(page.locator("#census-form")).to_be_visible()
    page.set_input_files("#census-file", str(census))
    page.click("#census-form button[type=submit]")
    expect(page.locator("#census-result .census-imported")).to_contain_text("Đã nhập: 1")
    refused = page.locator("#census-result table.census-refused tr td")
    expect(refused.nth(0)).to_have_text("3")
    expect(refused.nth(1)).to_have_text("C (Loại hình)")
    expect(page.locator("#cov-unregistered tr.unregistered-row")).to_have_count(before + 1)
    expect(page.locator("#cov-unregistered")).to_contain_text("Tiệm may Hồng")
    expect(page.locator("#cov-unregistered")).to_contain_text("Tổ 7")
    page.locator("#cov-unregistered").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "coverage-census.png"), full_page=True)


def test_a_district_officer_sees_which_communes_have_no_census(page, console: Console) -> None:  # type: ignore[no-untyped-def]
    _sign_in(page, console, "district_officer", "coverage")
    expect(page.locator("#cov-matrix tr.commune-row")).to_have_count(31)
    expect(page.locator("#cov-census-note")).to_be_visible()
    note = page.inner_text("#cov-census-note")
    assert note.startswith("Xã chưa có danh sách cơ sở")
    without = page.locator("#cov-matrix tr.commune-row:not(.census-row)")
    assert 1 <= without.count() < 31
    assert "chưa có danh sách cơ sở" in without.first.inner_text()
    assert re.fullmatch(r"\d+/\d+", without.first.locator(".cell:not(.none)").first.inner_text())  # today's cells
