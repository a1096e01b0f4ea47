"""The API and console on the distributed tier: scanners post through `POST /api/checkins` -> the edge ->
Kafka -> a Faust worker -> the ClickHouse server; the API's trace on the server equals the small-wave
contract, and the operations panel reads the running worker's /metrics."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qrtrace.access import Principal, Role
from qrtrace.api.app import create_app
from qrtrace.api.server import free_port
from qrtrace.api.service import ApiService
from qrtrace.api.tokens import TokenFile
from qrtrace.producers import kafka_front
from qrtrace.settings import settings_from_env
from qrtrace.sinks.audit import now_us
from tests.conftest import SMALL_WAVE, qrtrace_bin
from tests.distributed.helpers import topic_scan_ids, wait_for
from tests.distributed.test_http_endpoint import embedded_rows, server_rows

pytestmark = pytest.mark.distributed


CONTRACT = {"scan_id", "venue_id", "person_id", "direction", "event_time", "mode", "scanner_id", "declaration"}


def test_scanners_through_the_api_are_traced_on_the_server(pipeline, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pipeline.cli("venues", "import", str(SMALL_WAVE / "venues.csv"))  # also creates the pipeline's key file
    events = [line for line in (SMALL_WAVE / "events.jsonl").read_bytes().splitlines() if line.strip()]
    by_venue: dict[str, list[dict]] = {}
    for line in events:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a malformed line cannot be a JSON array element; the API refuses such bodies whole
        if isinstance(record, dict) and isinstance(record.get("venue_id"), str):
            by_venue.setdefault(record["venue_id"], []).append(record)

    book = TokenFile(tmp_path / "tokens.json")
    later = now_us() + 86_400_000_000
    tokens = {v: book.issue(Principal(f"scanner-{v}", Role.SCANNER, venues=frozenset({v})), later).token
              for v in by_venue}  # fmt: skip
    epi = book.issue(Principal("epi", Role.EPIDEMIOLOGIST), later).token
    admin = book.issue(Principal("admin", Role.ADMIN), later).token
    metrics_port = free_port("127.0.0.1")
    settings = settings_from_env(pipeline.env).with_overrides(
        token_file=tmp_path / "tokens.json", metrics_urls=(f"http://127.0.0.1:{metrics_port}/metrics",)
    )
    service = ApiService(settings)
    try:
        with TestClient(create_app(service), raise_server_exceptions=False) as client:
            sent = 0
            for venue, records in sorted(by_venue.items()):
                batch = [r for r in records if set(r) <= CONTRACT]
                resp = client.post("/api/checkins", json=batch, headers={"Authorization": f"Bearer {tokens[venue]}"})
                if resp.status_code == 422:  # a mistyped record refuses its batch: send the well-typed ones
                    batch = [r for r in batch if all(isinstance(r.get(k), str) for k in
                                                     ("scan_id", "person_id", "direction", "event_time", "mode",
                                                      "scanner_id"))]  # fmt: skip
                    resp = client.post("/api/checkins", json=batch,
                                       headers={"Authorization": f"Bearer {tokens[venue]}"})  # fmt: skip
                assert resp.status_code == 202, resp.text
                assert resp.json()["queued"] is True
                sent += resp.json()["received"]
            assert sent > 100

            env = pipeline.env
            pipeline_env_port = {**env, "QRTRACE_METRICS_PORT": str(metrics_port)}
            log = tmp_path / "worker.log"
            fh = log.open("ab")
            worker = subprocess.Popen([qrtrace_bin(), "worker"], env=pipeline_env_port, stdout=fh,
                                      stderr=subprocess.STDOUT)  # fmt: skip
            pipeline.workers.append(worker)
            expected = embedded_rows(pipeline.keys)
            got = wait_for(lambda: server_rows(pipeline.servers.store_url), lambda r: r == expected, timeout_s=240)
            assert got["visits"] == expected["visits"], log.read_text(errors="replace")[-2000:]
            assert got["checkins"] == expected["checkins"]
            fh.close()
            # The service's trace index follows what the worker stored through the server's visit feed: a
            # catch-up that began after the rows were there has them (no restart, no rebuild).
            stored, follower = time.monotonic(), service.rt.trace_index()
            caught_up = wait_for(lambda: (follower.refresh_started_at, follower.refreshed_at),
                                 lambda t: t[1] > t[0] > stored, timeout_s=30, every_s=0.2)  # fmt: skip
            assert caught_up[0] > stored and len(follower.current()) >= len(expected["visits"])

            ops = wait_for(lambda: client.get("/api/operations", headers={"Authorization": f"Bearer {admin}"}).json(),
                           lambda o: o["workers"]["state"] == "running", timeout_s=60)  # fmt: skip
            assert ops["mode"] == "distributed" and ops["store"] == "ClickHouse server"
            assert sum(ops["workers"]["targets"][0]["events_total"].values()) > 0

            auth = {"Authorization": f"Bearer {epi}"}
            assert client.post("/api/cases", headers=auth, json={
                "case_id": "SW-1", "person_id": "09381480988", "infectious_from": "2021-07-20T00:00:00+07:00",
                "infectious_to": "2021-07-21T00:00:00+07:00"}).status_code == 201  # fmt: skip
            trace_id = client.post("/api/traces", headers=auth, json={
                "case_ids": ["SW-1"], "until": "2021-07-25T00:00:00+07:00", "purpose": "distributed test"}
            ).json()["trace_id"]  # fmt: skip
            for _ in range(600):
                if client.get(f"/api/traces/{trace_id}", headers=auth).json()["status"] != "running":
                    break
                time.sleep(0.1)
            result = client.get(f"/api/traces/{trace_id}/result", params={"purpose": "checking the contract"},
                                headers=auth).json()["cases"][0]  # fmt: skip
    finally:
        service.close()
    want = json.loads((SMALL_WAVE / "expected.json").read_text())
    instant = lambda s: datetime.fromisoformat(s).timestamp()  # noqa: E731
    assert result["case"] == want["case"]
    assert {(c["person_id"], c["hop"], instant(c["first_exposure"])) for c in result["contacts"]} == {
        (c["person_id"], c["hop"], instant(c["first_exposure"])) for c in want["contacts"]}


def _scan(scan_id: str, venue: str, person: str) -> dict:
    # An hour before the tests' receiving clock (QRTRACE_NOW): inside the receiving window.
    return {"scan_id": scan_id, "venue_id": venue, "person_id": person, "direction": "in",
            "event_time": "2021-07-27T23:00:00+07:00", "mode": "personal_qr", "scanner_id": "phone-1"}  # fmt: skip


def test_one_producer_for_many_requests_and_a_new_venue_within_seconds(  # type: ignore[no-untyped-def]
    pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11: the API keeps one edge and one Kafka producer per process and caches the venue registry; a
    venue registered after the service started (by another process) is accepted at once, and a 202 means
    Kafka holds the scan."""
    monkeypatch.setattr(kafka_front, "VENUE_REFRESH_S", 60.0)  # only a miss may read the registry in this test
    pipeline.cli("venues", "import", str(SMALL_WAVE / "venues.csv"))
    header, first = (SMALL_WAVE / "venues.csv").read_text().splitlines()[:2]
    known = first.split(",")[0]
    fresh = tmp_path / "new-venue.csv"
    fresh.write_text(f"{header}\nVNNEW0001,Điểm mới,{','.join(first.split(',')[2:])}\n")
    book = TokenFile(tmp_path / "tokens.json")
    later = now_us() + 86_400_000_000
    token = {v: book.issue(Principal(f"scanner-{v}", Role.SCANNER, venues=frozenset({v})), later).token
             for v in (known, "VNNEW0001", "VNNEVER01")}  # fmt: skip
    settings = settings_from_env(pipeline.env).with_overrides(token_file=tmp_path / "tokens.json")
    service = ApiService(settings)
    sent: list[str] = []
    try:
        with TestClient(create_app(service), raise_server_exceptions=False) as client:

            def post(venue: str, scan_id: str) -> dict:
                resp = client.post("/api/checkins", json=[_scan(scan_id, venue, f"09{len(sent):08d}")],
                                   headers={"Authorization": f"Bearer {token[venue]}"})  # fmt: skip
                assert resp.status_code == 202, resp.text
                sent.append(scan_id)
                return resp.json()

            for i in range(40):
                assert post(known, f"one-{i}")["accepted"] == 1
            front = service.scanner_front
            assert front is not None
            assert (front.producers_created, front.venue_reads) == (1, 1)  # not one per request

            pipeline.cli("venues", "import", str(fresh))  # another process registers a venue
            started = time.monotonic()
            answer = post("VNNEW0001", "new-0")
            assert (answer["accepted"], answer["dead_lettered"]) == (1, 0)
            assert time.monotonic() - started < 5  # within seconds, though the cache is "fresh" for 60 s
            assert front.venue_reads == 2  # the miss read the registry once

            answer = post("VNNEVER01", "never-0")  # still unregistered after that one read: a dead letter
            assert (answer["accepted"], answer["dead_lettered"], answer["reasons"]) == (0, 1, {"unknown_venue": 1})
            sent.pop()
            assert front.producers_created == 1
    finally:
        service.close()
    on_topic = topic_scan_ids(pipeline.servers.broker, f"{pipeline.prefix}checkins")
    assert sorted(on_topic) == sorted(sent)  # every 202 is on Kafka, once


def test_kafka_away_is_503_with_retry_after(pipeline, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """With no broker listening the answer is 503 + Retry-After (nothing confirmed), within seconds."""
    pipeline.cli("venues", "import", str(SMALL_WAVE / "venues.csv"))
    venue = (SMALL_WAVE / "venues.csv").read_text().splitlines()[1].split(",")[0]
    book = TokenFile(tmp_path / "tokens.json")
    token = book.issue(Principal("scanner", Role.SCANNER, venues=frozenset({venue})), now_us() + 86_400_000_000).token
    settings = settings_from_env(pipeline.env).with_overrides(token_file=tmp_path / "tokens.json",
                                                              broker=f"127.0.0.1:{free_port('127.0.0.1')}")  # fmt: skip
    service = ApiService(settings)
    try:
        with TestClient(create_app(service), raise_server_exceptions=False) as client:
            started = time.monotonic()
            resp = client.post("/api/checkins", json=[_scan("away-0", venue, "0900000001")],
                               headers={"Authorization": f"Bearer {token}"})  # fmt: skip
            assert resp.status_code == 503, resp.text
            assert resp.headers["Retry-After"].isdigit()
            assert "Kafka" in resp.json()["error"] and "KafkaError" not in resp.json()["error"]
            assert time.monotonic() - started < 15
    finally:
        service.close()


def test_concurrent_requests_coalesce_each_answered_with_its_own_counts(pipeline, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Issue 11, item 2: requests arriving together share one edge pass and one produce (fewer passes than
    requests), yet each is answered with its own counts, a bad record fails only itself, and every scan
    answered 202 is on the topic exactly once."""
    from concurrent.futures import ThreadPoolExecutor

    pipeline.cli("venues", "import", str(SMALL_WAVE / "venues.csv"))
    venue = (SMALL_WAVE / "venues.csv").read_text().splitlines()[1].split(",")[0]
    who = Principal("scanner", Role.SCANNER, venues=frozenset({venue}))
    service = ApiService(settings_from_env(pipeline.env).with_overrides(token_file=tmp_path / "tokens.json"))
    n_requests = 96

    def one(i: int) -> tuple[int, dict, list[str]]:
        good = [_scan(f"co-{i}-{j}", venue, f"09{i:04d}{j:04d}") for j in range(1 + i % 3)]
        bad = [{**_scan(f"bad-{i}", venue, "0900000000"), "direction": "sideways"}] if i % 4 == 0 else []
        return i, service.ingest(who, good + bad), [r["scan_id"] for r in good]

    sent: list[str] = []
    try:
        service.ingest(who, [_scan("warm-0", venue, "0911111111")])  # the producer and topic lookup, once
        sent.append("warm-0")
        front = service.scanner_front
        assert front is not None
        passes_before = front.passes
        with ThreadPoolExecutor(max_workers=32) as pool:
            answers = list(pool.map(one, range(n_requests)))
        for i, answer, good in answers:
            assert (answer["received"], answer["accepted"]) == (len(good) + (i % 4 == 0), len(good)), answer
            assert answer["dead_lettered"] == (i % 4 == 0)
            assert answer["reasons"] == ({"bad_direction": 1} if i % 4 == 0 else {}), answer
            sent += good
        assert front.passes - passes_before < n_requests  # coalesced: not one pass per request
    finally:
        service.close()
    on_topic = topic_scan_ids(pipeline.servers.broker, f"{pipeline.prefix}checkins")
    assert sorted(on_topic) == sorted(sent)  # every 202'd scan is on Kafka, exactly once
