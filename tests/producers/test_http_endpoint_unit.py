"""The scanner HTTP endpoint without servers: a real edge (keys, validation, pseudonyms), a fake producer.

pytest-asyncio is not installed: each test runs its client coroutine with `asyncio.run` via `call`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from qrtrace.errors import InputError
from qrtrace.identity import Keyring, Pseudonymiser, Vault
from qrtrace.producers.edge import AdmittedBatch, Edge
from qrtrace.producers.http_endpoint import ScannerTokens, make_app
from qrtrace.settings import Settings

T = TypeVar("T")
TOKEN_V1 = "tok-venue-one-0123456789abcdef"
TOKEN_V2 = "tok-venue-two-0123456789abcdef"
TOKENS = {TOKEN_V1: {"scanner_id": "S-V1", "venue_id": "V1"}, TOKEN_V2: {"scanner_id": "S-V2", "venue_id": "V2"}}
KEYS = Keyring.generate()


@dataclass
class FakeReport:
    delivered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class FakeProducer:
    """Records what the endpoint hands to Kafka; `stall` makes flush leave everything undelivered."""

    def __init__(self, stall: bool = False) -> None:
        self.sent: list[tuple[AdmittedBatch, str]] = []
        self.report = FakeReport()
        self.stall = stall
        self._queued = 0

    def send(self, admitted: AdmittedBatch, source: str, received_at_us: int) -> None:
        assert received_at_us > 0
        self.sent.append((admitted, source))
        self._queued += len(admitted.checkins) + len(admitted.dead_letters) + len(admitted.identities)

    def flush(self, timeout_s: float = 60.0) -> int:
        if self.stall:
            return self._queued
        self.report.delivered += self._queued
        self._queued = 0
        return 0


def tokens_file(tmp_path: Path, tokens: object = TOKENS) -> Path:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps(tokens))
    return path


def app_for(tmp_path: Path, producer: FakeProducer, **limits: Any) -> web.Application:
    edge = Edge(Pseudonymiser(KEYS.pseudonym_key), Vault(KEYS.vault_key), {"V1", "V2"})
    return make_app(Settings(store=str(tmp_path / "store")), edge, producer,
                    ScannerTokens.from_file(tokens_file(tmp_path)), **limits)  # fmt: skip


def call(app: web.Application, scenario: Callable[[TestClient], Awaitable[T]]) -> T:
    """Serve `app` on loopback for the length of `scenario(client)` and return its result."""

    async def main() -> T:
        async with TestClient(TestServer(app)) as client:
            return await scenario(client)

    return asyncio.run(main())


def post(body: bytes | str, token: str | None = TOKEN_V1, content_type: str = "application/json"):  # type: ignore[no-untyped-def]
    """A scenario: POST /v1/checkins, returning (status, parsed JSON body, headers)."""

    async def scenario(client: TestClient) -> tuple[int, Any, Any]:
        headers = {"Content-Type": content_type}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        resp = await client.post("/v1/checkins", data=body, headers=headers)
        assert resp.content_type == "application/json"
        return resp.status, await resp.json(), resp.headers

    return scenario


def record(n: int, venue: str = "V1", person: str = "0912345678", **over: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "scan_id": f"scan-{venue}-{n}",
        "venue_id": venue,
        "person_id": person,
        "direction": "in",
        "event_time": f"2021-07-20T08:{n % 60:02d}:00+07:00",
        "mode": "venue_qr",
        "scanner_id": f"S-{venue}",
    }
    doc.update(over)
    return doc


def ndjson(records: list[dict[str, object]]) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in records) + b"\n"


def assert_error(status: int, doc: Any, expected: int) -> str:
    assert status == expected, doc
    assert set(doc) == {"error"} and isinstance(doc["error"], str)
    assert doc["error"].endswith(".") and "Traceback" not in doc["error"]
    return doc["error"]


@pytest.mark.parametrize("token", [None, "not-a-valid-token-at-all-000000", ""])
def test_no_token_or_a_wrong_token_is_401(tmp_path: Path, token: str | None) -> None:
    producer = FakeProducer()
    status, doc, headers = call(app_for(tmp_path, producer), post(orjson.dumps([record(1)]), token=token))
    assert "Bearer" in assert_error(status, doc, 401)
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert producer.sent == []


def test_a_basic_auth_header_is_not_a_token(tmp_path: Path) -> None:
    async def scenario(client: TestClient) -> tuple[int, Any]:
        resp = await client.post("/v1/checkins", data=b"[]", headers={"Authorization": f"Basic {TOKEN_V1}",
                                                                      "Content-Type": "application/json"})  # fmt: skip
        return resp.status, await resp.json()

    assert_error(*call(app_for(tmp_path, FakeProducer()), scenario), 401)


def test_a_record_for_another_venue_refuses_the_whole_batch_with_403(tmp_path: Path) -> None:
    producer = FakeProducer()
    body = orjson.dumps([record(1), record(2, venue="V2"), record(3)])
    status, doc, _ = call(app_for(tmp_path, producer), post(body, token=TOKEN_V1))
    message = assert_error(status, doc, 403)
    assert "V2" in message and "V1" in message and "Record 2" in message
    assert producer.sent == []  # nothing of a refused batch goes anywhere


def test_a_token_of_an_unregistered_venue_is_refused(tmp_path: Path) -> None:
    producer = FakeProducer()
    edge = Edge(Pseudonymiser(KEYS.pseudonym_key), Vault(KEYS.vault_key), {"V1"})
    app = make_app(Settings(), edge, producer, ScannerTokens.from_file(tokens_file(tmp_path)), known_venues={"V1"})
    status, doc, _ = call(app, post(orjson.dumps([record(1, venue="V2")]), token=TOKEN_V2))
    assert "V2 of scanner S-V2 is not registered" in assert_error(status, doc, 403)
    assert producer.sent == []


def test_an_oversized_body_is_413(tmp_path: Path) -> None:
    producer = FakeProducer()
    body = orjson.dumps([record(i) for i in range(40)])
    assert len(body) > 2000
    status, doc, _ = call(app_for(tmp_path, producer, max_body_bytes=2000), post(body))
    assert "2,000 bytes" in assert_error(status, doc, 413)
    assert producer.sent == []


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson"])
def test_too_many_records_is_413(tmp_path: Path, content_type: str) -> None:
    producer = FakeProducer()
    records = [record(i) for i in range(4)]
    body = orjson.dumps(records) if content_type == "application/json" else ndjson(records)
    status, doc, _ = call(app_for(tmp_path, producer, max_batch=3), post(body, content_type=content_type))
    assert "4 records" in assert_error(status, doc, 413)
    assert producer.sent == []


@pytest.mark.parametrize("body", [b'[{"scan_id": "x", ', b"not json", b'{"scan_id": "x"}', b""])
def test_a_malformed_json_body_is_400(tmp_path: Path, body: bytes) -> None:
    producer = FakeProducer()
    status, doc, _ = call(app_for(tmp_path, producer), post(body))
    assert_error(status, doc, 400)
    assert producer.sent == []


def test_an_unknown_content_type_is_415(tmp_path: Path) -> None:
    status, doc, _ = call(app_for(tmp_path, FakeProducer()), post(b"[]", content_type="text/plain"))
    assert "application/x-ndjson" in assert_error(status, doc, 415)


def test_bad_records_are_dead_lettered_and_counted_not_refused(tmp_path: Path) -> None:
    producer = FakeProducer()
    records = [
        record(1),
        record(2, person="0987654321"),
        {k: v for k, v in record(3).items() if k != "scan_id"},  # missing_field
        record(4, direction="sideways"),  # bad_direction
        record(5, event_time="2021-07-20 08:05"),  # bad_event_time
        record(6, direction="out"),
    ]
    status, doc, _ = call(app_for(tmp_path, producer), post(orjson.dumps(records)))
    assert status == 202, doc
    assert doc == {
        "received": 6,
        "accepted": 3,
        "dead_lettered": 3,
        "reasons": {"bad_direction": 1, "bad_event_time": 1, "missing_field": 1},
    }
    (admitted, source), = producer.sent  # fmt: skip
    assert source == "http:S-V1"
    assert len(admitted.checkins) == 3 and len(admitted.dead_letters) == 3


def test_json_lines_with_a_broken_line_dead_letter_just_that_line(tmp_path: Path) -> None:
    producer = FakeProducer()
    body = ndjson([record(1), record(2)]) + b'{"scan_id": "broken\n' + ndjson([record(3)])
    status, doc, _ = call(app_for(tmp_path, producer), post(body, content_type="application/x-ndjson"))
    assert status == 202, doc
    assert (doc["accepted"], doc["dead_lettered"], doc["reasons"]) == (3, 1, {"malformed_json": 1})


def test_no_raw_person_id_reaches_the_producer(tmp_path: Path) -> None:
    producer = FakeProducer()
    raw = ["0912345678", "0987654321", "079201000123"]
    records = [record(i, person=p, declaration={"fever": False}) for i, p in enumerate(raw)]
    records.append(record(9, person="0900000009", direction="nowhere"))  # a dead letter carries a person too
    status, doc, _ = call(app_for(tmp_path, producer), post(orjson.dumps(records)))
    assert status == 202 and doc["accepted"] == 3 and doc["dead_lettered"] == 1, doc
    (admitted, _), = producer.sent  # fmt: skip
    pseudonyms = Pseudonymiser(KEYS.pseudonym_key).many(raw)
    assert admitted.checkins.person.tolist() == pseudonyms
    assert sorted(admitted.identities.person) == sorted(pseudonyms)
    columns = {f.name: getattr(admitted.checkins, f.name).tolist() for f in fields(admitted.checkins)}
    everything = repr((columns, admitted.dead_letters, admitted.identities)).replace(" ", "")
    for person in [*raw, "0900000009"]:
        assert person not in everything
    assert "fever" not in everything  # declarations are sealed too


def test_503_with_retry_after_when_kafka_does_not_confirm_in_time(tmp_path: Path) -> None:
    producer = FakeProducer(stall=True)
    status, doc, headers = call(app_for(tmp_path, producer, flush_timeout_s=0.1), post(orjson.dumps([record(1)])))
    assert "again" in assert_error(status, doc, 503)
    assert int(headers["Retry-After"]) > 0


def test_503_when_kafka_reports_failed_deliveries(tmp_path: Path) -> None:
    class Failing(FakeProducer):
        def flush(self, timeout_s: float = 60.0) -> int:
            self.report.failed += self._queued
            self.report.errors.append("Local: Message timed out")
            self._queued = 0
            raise InputError("messages could not be delivered")  # as CheckinProducer.flush does

    status, doc, headers = call(app_for(tmp_path, Failing()), post(orjson.dumps([record(1)])))
    assert "Message timed out" in assert_error(status, doc, 503)
    assert "Retry-After" in headers


def test_concurrent_requests_reach_the_producer_one_at_a_time(tmp_path: Path) -> None:
    class Slow(FakeProducer):
        active = peak = 0

        def flush(self, timeout_s: float = 60.0) -> int:
            Slow.active += 1
            Slow.peak = max(Slow.peak, Slow.active)
            time.sleep(0.02)
            Slow.active -= 1
            return super().flush(timeout_s)

    producer = Slow()

    async def scenario(client: TestClient) -> list[tuple[int, Any, Any]]:
        bodies = [orjson.dumps([record(i, person=f"09{i:08d}")]) for i in range(12)]
        return await asyncio.gather(*(post(body)(client) for body in bodies))

    answers = call(app_for(tmp_path, producer), scenario)
    assert [(status, doc["accepted"]) for status, doc, _ in answers] == [(202, 1)] * 12
    assert Slow.peak == 1 and len(producer.sent) == 12


def test_an_empty_batch_is_accepted_and_touches_nothing(tmp_path: Path) -> None:
    producer = FakeProducer()
    status, doc, _ = call(app_for(tmp_path, producer), post(b"[]"))
    assert (status, doc["accepted"], doc["dead_lettered"]) == (202, 0, 0)
    assert producer.sent == []


def test_healthz_metrics_and_json_errors_for_other_paths(tmp_path: Path) -> None:
    async def scenario(client: TestClient) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {TOKEN_V1}", "Content-Type": "application/json"}
        await client.post("/v1/checkins", data=orjson.dumps([record(1)]), headers=headers)
        health = await client.get("/healthz")
        metrics = await client.get("/metrics")
        missing = await client.get("/nowhere")
        wrong_method = await client.get("/v1/checkins")
        return {
            "health": (health.status, await health.json()),
            "metrics": (metrics.status, metrics.headers["Content-Type"], await metrics.text()),
            "missing": (missing.status, await missing.json()),
            "wrong_method": (wrong_method.status, await wrong_method.json(), wrong_method.headers.get("Allow")),
        }

    got = call(app_for(tmp_path, FakeProducer()), scenario)
    assert got["health"] == (200, {"status": "ok"})
    status, content_type, text = got["metrics"]
    assert status == 200 and content_type.startswith("text/plain")
    assert 'qrtrace_http_requests_total{route="/v1/checkins",status="202"}' in text
    assert 'qrtrace_events_total{outcome="accepted",stage="http"}' in text
    assert_error(*got["missing"], 404)
    status, doc, allow = got["wrong_method"]
    assert "POST" in assert_error(status, doc, 405) and allow == "POST"


def test_tokens_are_kept_only_as_digests(tmp_path: Path) -> None:
    tokens = ScannerTokens.from_file(tokens_file(tmp_path))
    assert TOKEN_V1 not in repr(vars(tokens))
    assert tokens.authenticate(f"Bearer {TOKEN_V1}").venue_id == "V1"  # type: ignore[union-attr]
    assert tokens.authenticate(f"bearer  {TOKEN_V2} ").venue_id == "V2"  # type: ignore[union-attr]
    assert tokens.authenticate(f"Bearer {TOKEN_V1}x") is None
    assert tokens.venues() == {"V1", "V2"} and len(tokens) == 2


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "does not exist"),
        ("{not json", "not valid JSON"),
        ("[]", "one JSON object"),
        ("{}", "holds no tokens"),
        ('{"tok-0123456789abcdef": {"scanner_id": "S"}}', "entry 1: each token needs"),
        ('{"short": {"scanner_id": "S", "venue_id": "V"}}', "at least 16 characters"),
    ],
)
def test_a_missing_or_invalid_tokens_file_is_one_clear_sentence(
    tmp_path: Path, content: str | None, fragment: str
) -> None:
    path = tmp_path / "tokens.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError) as err:
        ScannerTokens.from_file(path)
    message = str(err.value)
    assert fragment in message and str(path) in message and "\n" not in message
    assert "short" not in message  # the token itself is a secret: never echoed
