"""The paper-log card of the venues page in Chromium: a venue owner downloads its template, fills it in
(here with openpyxl, as a person would in a spreadsheet), uploads it and sees the refused rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import openpyxl
import pytest

from tests.console.conftest import ARTIFACTS, Console
from tests.console.test_console import _sign_in

pytestmark = pytest.mark.browser
VN = timezone(timedelta(hours=7))


def test_a_venue_owner_uploads_a_paper_log_and_sees_the_refused_rows(page, console: Console, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _sign_in(page, console, "venue_owner", "venues")
    page.wait_for_selector("#paper-card:not([hidden]) #paper-venue option", state="attached")
    yesterday = (datetime.now(UTC).astimezone(VN) - timedelta(days=1)).date().isoformat()
    page.fill("#paper-date", yesterday)
    with page.expect_download() as info:
        page.click("#paper-template")
    template = tmp_path / "template.xlsx"
    info.value.save_as(template)
    wb = openpyxl.load_workbook(template)
    ws = wb.active
    assert ws["B4"].value == yesterday and ws["B2"].value == page.input_value("#paper-venue")
    rows = [("0912000551", "08:00", "08:40"), ("0912000552", "9h15", None), ("0912000553", "10:00", "09:30"),
            (None, "11:00", None), ("0912000554", "=NOW()", None), ("0912000555", "tám giờ", None)]  # fmt: skip
    for i, (ident, t_in, t_out) in enumerate(rows):
        ws[f"B{8 + i}"], ws[f"C{8 + i}"], ws[f"D{8 + i}"] = ident, t_in, t_out
    filled = tmp_path / "filled.xlsx"
    wb.save(filled)
    page.set_input_files("#paper-file", str(filled))
    page.click("#paper-upload")
    page.wait_for_selector("#paper-refused")
    cells = [[c.strip() for c in r.split("\t")] for r in page.inner_text("#paper-refused").splitlines()[1:]]
    assert [(r[0], r[1][0]) for r in cells] == [("10", "D"), ("11", "B"), ("12", "C"), ("13", "C")]
    assert "giờ ra trước giờ vào" in cells[0][2] and "công thức" in cells[2][2]
    assert "Lượt vào/ra: 3" in page.inner_text("#paper-report")
    page.locator("#paper-card").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "paper-log.png"), full_page=False)
