"""A store's own error reaches a caller as a 503 sentence with Retry-After, never the database's text
(issue 10, item 3: a refused batch used to answer with 'DB::Exception: Too many partitions')."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from qrtrace.api.app import create_app
from qrtrace.errors import StoreError

pytestmark = pytest.mark.api


def test_a_store_error_is_a_503_sentence_without_the_database_text(service) -> None:  # type: ignore[no-untyped-def]
    app = create_app(service)

    def boom() -> None:
        raise StoreError("The embedded store refused a statement: Code: 252. DB::Exception: Too many partitions")

    app.add_api_route("/api/test-store-error", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.get("/api/test-store-error")
    assert resp.status_code == 503 and resp.headers["Retry-After"]
    assert "DB::Exception" not in resp.text and "partitions" not in resp.text
    assert resp.json()["error"].endswith(".")


def test_every_503_says_when_to_send_again(service) -> None:  # type: ignore[no-untyped-def]
    """The answer contract (docs/design.md): a 503 carries Retry-After (nothing was kept; it may be resent)."""
    from qrtrace.producers.front import OVERLOADED, FrontUnavailable

    app = create_app(service)

    def overloaded() -> None:
        raise FrontUnavailable("The server has more check-ins waiting than it can keep soon.", OVERLOADED)

    app.add_api_route("/api/test-overloaded", overloaded)
    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.get("/api/test-overloaded")
    assert resp.status_code == 503 and int(resp.headers["Retry-After"]) > 0
    assert "waiting" in resp.json()["error"]
