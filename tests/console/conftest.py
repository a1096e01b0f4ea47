"""Browser tier: `qrtrace serve` on a demo store, started by the test as a subprocess, driven in Debian's
headless Chromium through Playwright. Screenshots go to test-artifacts/browser/.

No Chromium is a failure that says how to install it, never a skip."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, qrtrace_bin

pytestmark = pytest.mark.browser

ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]  # fmt: skip


@dataclass
class Console:
    url: str
    tokens: dict[str, str]
    store: Path

    def sign_in_link(self, role: str, page: str = "") -> str:
        return f"{self.url}#token={self.tokens[role]}"


def _chromium() -> str:
    path = os.environ.get("QRTRACE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("Debian's chromium is not installed; run infra/browser/install.sh (make browser does).")
    return path


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    root = tmp_path_factory.mktemp("console")
    store = root / "store"
    env = {**os.environ, "QRTRACE_KEY_FILE": str(root / "keys" / "keys.json"),
           "QRTRACE_TOKEN_FILE": str(root / "keys" / "tokens.json"), "COLUMNS": "200"}  # fmt: skip
    env.pop("QRTRACE_STORE", None)
    demo = subprocess.run([qrtrace_bin(), "demo", "--store", str(store), "--population", "3000", "--days", "3"],
                          capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    assert demo.returncode == 0, demo.stderr
    log = (root / "serve.log").open("w")
    server = subprocess.Popen([qrtrace_bin(), "serve", "--store", str(store), "--port", "0"], env=env,
                              stdout=subprocess.PIPE, stderr=log, text=True)  # fmt: skip
    try:
        first = server.stdout.readline() if server.stdout else ""
        assert first.startswith("qrtrace console: http://127.0.0.1:"), first + (root / "serve.log").read_text()
        url = first.split()[2]
        deadline = time.monotonic() + 60
        while True:  # bounded wait for the server to answer
            try:
                with urllib.request.urlopen(f"{url}healthz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError as exc:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise AssertionError("qrtrace serve did not come up: " + (root / "serve.log").read_text()) from exc
                time.sleep(0.2)
        yield Console(url, json.loads((store / "demo-tokens.json").read_text()), store)
    finally:
        server.terminate()  # our own child, by its pid
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True,
                                  locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")  # fmt: skip
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.set_default_timeout(20_000)
    yield pg
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
