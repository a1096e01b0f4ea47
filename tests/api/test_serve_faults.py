"""`qrtrace serve` killed (SIGKILL) while scanners post, then restarted: every batch the scanners saw
acknowledged is stored, a batch in flight is simply sent again, and the store ends exactly like the same
batches handed to the runtime one by one: nothing lost, nothing duplicated."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from qrtrace.access import Principal, Role
from qrtrace.api.tokens import TokenFile
from tests.conftest import SMALL_WAVE, qrtrace_bin

pytestmark = pytest.mark.api
CONTRACT = ("scan_id", "venue_id", "person_id", "direction", "event_time", "mode", "scanner_id")
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, never a proxy

# Read in a child process: this test process may already own another chDB store (one engine per process).
DUMP = """
import json, os, sys
from pathlib import Path
from qrtrace.embedded import EmbeddedRuntime
from qrtrace.settings import Settings
store, keys, requests = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
with EmbeddedRuntime(Settings(store=store, key_file=keys, now=os.environ.get("QRTRACE_NOW"))) as rt:
    if requests != "-":
        for batch in json.loads(Path(requests).read_text()):
            rt.ingest([[json.dumps(r).encode() for r in batch]], source="reference")
    q = rt.store.query
    out = {name: sorted(map(list, zip(*q(sql).values()))) for name, sql in {
        "checkins": "SELECT scan_id, venue_id, person, event_time_us, outcome FROM qrtrace.checkins FINAL",
        "visits": "SELECT venue_id, person, start_us, end_us, version, opened_by FROM qrtrace.visits_by_venue FINAL",
        "dead_letters": "SELECT reason, count() FROM qrtrace.dead_letters FINAL GROUP BY reason",
    }.items()}
print(json.dumps(out))
"""


def scanner_batches() -> list[list[dict]]:
    """The small wave as scanners send it: each venue's scans in order, at most 6 per request."""
    batches: list[list[dict]] = []
    for line in (SMALL_WAVE / "events.jsonl").read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict) or set(record) - {*CONTRACT, "declaration"}:
            continue
        if not all(isinstance(record.get(k), str) for k in CONTRACT):
            continue
        if batches and batches[-1][0]["venue_id"] == record["venue_id"] and len(batches[-1]) < 6:
            batches[-1].append(record)
        else:
            batches.append([record])
    return batches


def _start(store: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    """`qrtrace serve --port 0` (it binds before printing its address); killed if it does not come up."""
    with log.open("ab") as err:
        proc = subprocess.Popen([qrtrace_bin(), "serve", "--store", str(store), "--port", "0"], env=env,
                                stdout=subprocess.PIPE, stderr=err, text=True)  # fmt: skip
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        first = proc.stdout.readline() if ready and proc.stdout else ""
        assert first.startswith("qrtrace console: "), first + log.read_text()
        url = first.split()[2]
        for _ in range(300):  # bounded: 30 s
            try:
                with _HTTP.open(f"{url}healthz", timeout=2):
                    return proc, url
            except OSError:
                time.sleep(0.1)
        raise AssertionError("qrtrace serve did not answer: " + log.read_text())
    except BaseException:
        proc.kill()  # our own child, by its pid
        proc.wait(timeout=30)
        raise


def _post(url: str, token: str, batch: list[dict]) -> int:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(f"{url}api/checkins", data=json.dumps(batch).encode(), method="POST",
                                     headers=headers)  # fmt: skip
    try:
        with _HTTP.open(request, timeout=60) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return 0  # the server died under the request: not acknowledged


def _dump(store: Path, keys: Path, requests: Path | None, env: dict[str, str]) -> dict:
    proc = subprocess.run([sys.executable, "-c", DUMP, str(store), str(keys), str(requests or "-")],
                          capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_killed_and_restarted_server_loses_and_doubles_nothing(tmp_path: Path) -> None:
    keys, tokens_file = tmp_path / "keys.json", tmp_path / "tokens.json"
    # The worked example is from July 2021: the server receives it as a replay (QRTRACE_NOW).
    env = {**os.environ, "QRTRACE_KEY_FILE": str(keys), "QRTRACE_TOKEN_FILE": str(tokens_file),
           "QRTRACE_NOW": "2021-07-25T12:00:00+07:00"}
    env.pop("QRTRACE_STORE", None)
    served, reference = tmp_path / "served", tmp_path / "reference"
    for store in (served, reference):
        subprocess.run([qrtrace_bin(), "venues", "import", str(SMALL_WAVE / "venues.csv"), "--store", str(store)],
                       env=env, check=True, capture_output=True, timeout=120)  # fmt: skip
    batches = scanner_batches()
    assert len(batches) > 20
    book = TokenFile(tokens_file)
    token = {v: book.issue(Principal(f"scanner-{v}", Role.SCANNER, venues=frozenset({v})), 2**62).token
             for v in {b[0]["venue_id"] for b in batches}}  # fmt: skip

    log = tmp_path / "serve.log"
    server, url = _start(served, env, log)
    # Two kills at different moments of a pass (parsing and admitting, or writing the store / saving state).
    kills = {len(batches) // 3: 0.02, 2 * len(batches) // 3: 0.09}
    acknowledged = 0
    try:
        i = 0
        while i < len(batches):  # bounded: each batch is retried only after a restart
            batch = batches[i]
            if i in kills:
                delay = kills.pop(i)
                status: list[int] = []
                poster = threading.Thread(target=lambda b=batch, u=url, out=status: out.append(
                    _post(u, token[b[0]["venue_id"]], b)))  # fmt: skip
                poster.start()
                time.sleep(delay)  # the batch is in flight (being stored, or about to be)
                server.send_signal(signal.SIGKILL)  # our own child, by its pid
                server.wait(timeout=30)
                poster.join(timeout=60)
                server, url = _start(served, env, log)
                print("in-flight batch answered:", status)  # shown with -s
                if status and status[0] == 202:
                    acknowledged += 1
                    i += 1
                continue  # not acknowledged: the scanner sends the same batch again
            assert _post(url, token[batch[0]["venue_id"]], batch) == 202
            acknowledged += 1
            i += 1
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
    assert acknowledged == len(batches)

    requests = tmp_path / "requests.json"
    requests.write_text(json.dumps(batches))
    want = _dump(reference, keys, requests, env)
    got = _dump(served, keys, None, env)
    assert len(want["visits"]) > 20 and len(want["checkins"]) > 100
    assert got["checkins"] == want["checkins"]
    assert got["visits"] == want["visits"]
    assert got["dead_letters"] == want["dead_letters"]
