"""Scanners -> the front door (`qrtrace ingest-server --workers 2`) -> Kafka -> a Faust worker -> ClickHouse
server -> trace.

The small-wave example is posted venue by venue, each with its own scanner token (`qrtrace tokens issue`,
bound to the venue; half as a JSON array, half as JSON lines, one batch sent twice as a scanner retry
would), to two server processes sharing one port; the trace must report exactly the contacts in
expected.json, the stored visits and check-ins must equal the embedded pipeline's, and /metrics counts
the requests of both processes.
"""

from __future__ import annotations

import json
import select
import shlex
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SMALL_WAVE, qrtrace_bin
from tests.distributed.helpers import CHECKINS, SIM_CLOCK, VISITS, rows, wait_for

pytestmark = pytest.mark.distributed
# Loopback only: never through a proxy from the environment.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def instant(s: str) -> float:
    return datetime.fromisoformat(s).timestamp()


def post(url: str, token: str, body: bytes, content_type: str) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    request = urllib.request.Request(url + "api/checkins", data=body, method="POST", headers=headers)
    try:
        with _HTTP.open(request, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def scanner_tokens(pipeline, venues: list[str], token_file: Path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """One scanner token per venue, issued as an operator would (`qrtrace tokens issue`)."""
    env = {**pipeline.env, "QRTRACE_TOKEN_FILE": str(token_file)}
    token_of = {}
    for v in venues:
        out = subprocess.run([qrtrace_bin(), "tokens", "issue", "--role", "scanner", "--name", f"S-{v}", "--venue", v],
                             env=env, capture_output=True, text=True, timeout=120, check=True).stdout  # fmt: skip
        token_of[v] = out.split()[0]
    return token_of


@contextmanager
def ingest_server(pipeline, tmp_path: Path, workers: int = 2) -> Iterator[tuple[str, dict[str, str]]]:  # type: ignore[no-untyped-def]
    """`qrtrace ingest-server --workers N` on a free port with one token per small-wave venue; yields (url, token
    by venue)."""
    venues = [line.split(",")[0] for line in (SMALL_WAVE / "venues.csv").read_text().splitlines()[1:] if line]
    token_file = tmp_path / "tokens.json"
    token_of = scanner_tokens(pipeline, venues, token_file)
    assert not any(t in token_file.read_text() for t in token_of.values())  # only scrypt hashes are kept
    log = tmp_path / "ingest-server.log"
    with log.open("ab") as err:
        proc = subprocess.Popen([qrtrace_bin(), "ingest-server", "--port", "0", "--workers", str(workers)],
                                env={**pipeline.env, "QRTRACE_TOKEN_FILE": str(token_file)}, stdout=subprocess.PIPE,
                                stderr=err)  # fmt: skip
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        banner = proc.stdout.readline().decode() if ready else ""  # type: ignore[union-attr]
        assert "listening on http://" in banner, f"no banner ({banner!r}): {log.read_text(errors='replace')[-2000:]}"
        url = banner.split("listening on ")[1].split()[0]
        yield url, token_of
        proc.send_signal(signal.SIGTERM)  # the workers flush their producers; the supervisor exits 0
        assert proc.wait(timeout=60) == 0, log.read_text(errors="replace")[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        proc.stdout.close()  # type: ignore[union-attr]


def embedded_rows(keys: Path) -> dict[str, set[tuple]]:
    """The small wave through the embedded pipeline with the same keys: what the server must end up holding."""
    from qrtrace.domain.venues import read_venues_csv
    from qrtrace.embedded import EmbeddedRuntime
    from qrtrace.settings import Settings

    with tempfile.TemporaryDirectory() as tmp, EmbeddedRuntime(Settings(store=tmp, key_file=keys, now=SIM_CLOCK)) as rt:
        rt.register_venues(read_venues_csv(SMALL_WAVE / "venues.csv", rt.commune_codes()))
        rt.ingest([(SMALL_WAVE / "events.jsonl").read_bytes().splitlines()], source="embedded")
        return {"visits": rows(rt.store, VISITS), "checkins": rows(rt.store, CHECKINS)}


def server_rows(url: str) -> dict[str, set[tuple]]:
    from qrtrace.sinks.clickhouse_store import ClickHouseStore

    store = ClickHouseStore(url)
    try:
        return {"visits": rows(store, VISITS), "checkins": rows(store, CHECKINS)}
    finally:
        store.close()


def test_small_wave_posted_by_scanners_is_traced_end_to_end(pipeline, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pipeline.cli("venues", "import", str(SMALL_WAVE / "venues.csv"))  # also creates the pipeline's key file
    events = [line for line in (SMALL_WAVE / "events.jsonl").read_bytes().splitlines() if line.strip()]
    by_venue: dict[str, list[bytes]] = {}
    for line in events:
        by_venue.setdefault(json.loads(line)["venue_id"], []).append(line)
    assert len(by_venue) == 4

    with ingest_server(pipeline, tmp_path) as (url, token_of):
        answers = []
        for n, (venue, lines) in enumerate(sorted(by_venue.items())):
            if n % 2:
                body, content_type = b"\n".join(lines) + b"\n", "application/x-ndjson"
            else:
                body, content_type = b"[" + b",".join(lines) + b"]", "application/json"
            status, doc = post(url, token_of[venue], body, content_type)
            assert status == 202, doc
            answers.append(doc)
        assert sum(a["received"] for a in answers) == len(events) == 150
        assert sum(a["accepted"] + a["dead_lettered"] for a in answers) == 150
        # A scanner that missed the answer sends the same batch again: stored once (same scan_ids).
        venue, lines = sorted(by_venue.items())[0]
        status, doc = post(url, token_of[venue], b"\n".join(lines), "application/x-ndjson")
        assert status == 202 and doc["received"] == len(lines), doc
        # A token is bound to its venue.
        other = sorted(by_venue)[1]
        status, doc = post(url, token_of[venue], b"\n".join(by_venue[other]), "application/x-ndjson")
        # The same sentence whatever the venue (issue 10: a token cannot probe which venues exist).
        assert status == 403 and "bound to its own venue" in doc["error"] and other not in doc["error"], doc
        with _HTTP.open(url + "metrics", timeout=30) as resp:  # both processes' requests, summed
            metrics = resp.read().decode()
        assert 'qrtrace_frontdoor_requests_total{status="202"} 5.0' in metrics, metrics[-3000:]
        assert 'qrtrace_frontdoor_requests_total{status="403"} 1.0' in metrics

    log = tmp_path / "worker.log"
    pipeline.start_worker(log)
    expected_rows = embedded_rows(pipeline.keys)
    assert len(expected_rows["visits"]) > 20
    got = wait_for(lambda: server_rows(pipeline.servers.store_url), lambda r: r == expected_rows, timeout_s=240)
    tail = log.read_text(errors="replace")[-2000:]
    missing, extra = expected_rows["visits"] - got["visits"], got["visits"] - expected_rows["visits"]
    assert not missing and not extra, f"visits missing {len(missing)}, extra {len(extra)}\n{tail}"
    assert got["checkins"] == expected_rows["checkins"]

    expected = json.loads((SMALL_WAVE / "expected.json").read_text())
    trace = ["trace", "09381480988", "--from", "2021-07-20T00:00:00+07:00", "--to", "2021-07-21T00:00:00+07:00",
             "--until", "2021-07-25T00:00:00+07:00", "--json"]  # fmt: skip
    assert shlex.split(expected["command"])[1:][: len(trace) - 1] == trace[:-1]
    got_trace = json.loads(pipeline.cli(*trace))
    assert got_trace["case"] == expected["case"]
    want = {(c["person_id"], c["hop"], instant(c["first_exposure"])) for c in expected["contacts"]}
    have = {(c["person_id"], c["hop"], instant(c["first_exposure"])) for c in got_trace["contacts"]}
    assert have == want
