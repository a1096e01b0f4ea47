"""Property-based requests generated from the published OpenAPI schema (schemathesis strategies driven
by hypothesis): whatever they send, the API answers with a 2xx or a 4xx sentence, never a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from tests.api.conftest import World

pytestmark = pytest.mark.api

ROLES = ("admin", "epidemiologist", "commune_officer", "scanner")


def _operations(client: TestClient) -> dict[str, object]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    ops = (r.ok() for r in schema.get_all_operations())
    return {f"{op.method.upper()} {op.path}": op for op in ops}


def test_the_schema_lists_every_route(client: TestClient) -> None:
    assert len(_operations(client)) >= 21


def test_no_generated_request_makes_the_server_fail(client: TestClient, world: World) -> None:
    failures: list[str] = []
    for _, operation in sorted(_operations(client).items()):

        @given(case=operation.as_strategy())  # type: ignore[attr-defined]
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)  # fmt: skip
        def check(case) -> None:  # type: ignore[no-untyped-def]
            for role in ROLES:
                response = case.call(headers=world.auth(role))
                if response.status_code >= 500 or (response.status_code >= 400 and
                                                   set(response.json()) != {"error"}):  # fmt: skip
                    failures.append(f"{role} {case.method} {case.path} {case.path_parameters} {case.query} "
                                    f"{str(case.body)[:200]} -> {response.status_code} {response.text[:200]}")

        check()
    assert not failures, "\n".join(failures[:20])
