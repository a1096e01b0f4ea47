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
from qrtrace.settings import settings_from_env
from qrtrace.sinks.audit import now_us
from tests.conftest import SMALL_WAVE, qrtrace_bin
from tests.distributed.helpers import wait_for
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
