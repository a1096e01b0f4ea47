"""The front door through outages, under load (issue 11, item 4): scanners posting one check-in per request to
`qrtrace ingest-server --workers 2` while Kafka or ClickHouse goes away and comes back.

- Kafka stopped under load: once every broker is unreachable, each new request is refused at once (503 +
  Retry-After + a sentence, within a second, not after Kafka's 10 s message timeout) and none is answered
  202; after the broker is back, 202s resume; every scan answered 202 reaches ClickHouse exactly once, and
  nothing is stored that was never sent.
- ClickHouse stopped: the store is not on a scanner request's path (the venue registry is cached), so the
  scanners keep getting 202s (Kafka keeps their scans); once the store is back, a worker stores each of them
  exactly once.

Every loop is bounded in count and time; the servers listen on 127.0.0.1 only.
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from qrtrace.producers.kafka_front import KafkaFront
from tests.conftest import SMALL_WAVE
from tests.distributed.conftest import INFRA, Pipeline, script
from tests.distributed.helpers import topic_scan_ids, wait_for
from tests.distributed.test_http_endpoint import ingest_server

pytestmark = pytest.mark.distributed

THREADS = 8  # concurrent scanners
PACE_S = 0.02  # each scanner's pause between requests (~400 requests/s in all: load, not a CPU hog)
MAX_PER_THREAD = 4_000  # a hard bound on the requests of one scanner thread
MAX_LOAD_S = 90.0  # a hard bound on how long any load runs, whatever the test's own timeline does
RECONNECT_EVERY = 25  # requests per connection: new connections spread over both processes (SO_REUSEPORT)
REQUEST_TIMEOUT_S = 30.0  # longer than the front's own answer limit (15 s): a hang shows as status 0
STORE_WAIT_S = 300.0
HANG_S = KafkaFront.answer_timeout_s + 1  # no request waits longer than the front's own limit (then it is a 503)

# Kafka's outage timeline (seconds).
WARM_S = 3.0  # load before the broker is stopped
# Load while the broker is away (after stop.sh returned, before start.sh is called). A request whose messages
# were queued before the producers noticed (the stop itself) waits for Kafka's message timeout (10 s) and is
# then answered 503; its scanner thread is blocked meanwhile. So the outage lasts longer than that timeout,
# and the scanners have a few seconds of new requests to send while every broker is known to be down.
DOWN_S = 14.0
REFUSE_AFTER_S = 1.5  # from then on the producers know every broker is unreachable
REFUSE_WITHIN_S = 1.0  # ... and a new request is answered 503 that fast
RECOVER_S = 10.0  # after start.sh returned, the producers have reconnected (librdkafka's reconnect backoff)
AFTER_S = 14.0  # load after the broker is back (RECOVER_S plus a few seconds of requests to look at)

# ClickHouse's outage: longer than the Kafka front's venue refresh (5 s), so a refresh fails meanwhile.
CH_AWAY_S = 8.0
CH_ANSWER_WITHIN_S = 2.0

STORED_COUNTS = "SELECT scan_id, count() AS n FROM qrtrace.checkins FINAL GROUP BY scan_id"
EVENT_BASE = datetime.fromisoformat("2021-07-27T22:00:00+07:00")  # before QRTRACE_NOW (SIM_CLOCK), within a day


class _ResetOnClose(http.client.HTTPConnection):
    """A connection that is reset (SO_LINGER 0) when closed, so the scanners' churn leaves no client-side TIME_WAIT:
    a source port held in TIME_WAIT for a minute would keep Kafka or ClickHouse (both on ports of the ephemeral
    range, kept across restarts) from listening again (it did: "port ... is taken by another process")."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@dataclass(frozen=True)
class Answer:
    """One request as its scanner saw it."""

    scan_id: str
    status: int  # 0: no HTTP answer (the connection failed or timed out)
    retry_after: str | None
    body: Any  # the decoded JSON answer, or the text / exception when it was not JSON
    sent: float  # time.monotonic() when the request was sent
    answered: float  # ... when its answer (or the failure) was read

    @property
    def latency(self) -> float:
        return self.answered - self.sent


class Scanners:
    """`threads` scanners, each posting one check-in per request (unique scan_ids) with its venue's token until
    `stop()`, or MAX_PER_THREAD requests, or MAX_LOAD_S seconds, whichever comes first."""

    def __init__(self, url: str, token_of: dict[str, str], tag: str, threads: int = THREADS) -> None:
        parts = urlsplit(url)
        assert parts.hostname == "127.0.0.1" and parts.port, url
        self._host, self._port = parts.hostname, parts.port
        self._venues = sorted(token_of)
        self._token_of = token_of
        self._tag = tag
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._answers: list[Answer] = []
        self._threads = [threading.Thread(target=self._scanner, args=(t,), name=f"scanner-{tag}-{t}", daemon=True)
                         for t in range(threads)]  # fmt: skip
        self._deadline = 0.0

    def start(self) -> Scanners:
        self._deadline = time.monotonic() + MAX_LOAD_S
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> list[Answer]:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=REQUEST_TIMEOUT_S + 10)
        assert not any(t.is_alive() for t in self._threads), "a scanner thread did not finish"
        with self._lock:
            return list(self._answers)

    def _scanner(self, t: int) -> None:
        venue = self._venues[t % len(self._venues)]
        headers = {"Authorization": f"Bearer {self._token_of[venue]}", "Content-Type": "application/json"}
        conn: _ResetOnClose | None = None
        try:
            for n in range(MAX_PER_THREAD):
                if self._stop.is_set() or time.monotonic() > self._deadline:
                    break
                if conn is None or n % RECONNECT_EVERY == 0:
                    if conn is not None:
                        conn.close()
                    conn = _ResetOnClose(self._host, self._port, timeout=REQUEST_TIMEOUT_S)
                scan_id = f"{self._tag}-{t}-{n}"
                checkin = {"scan_id": scan_id, "venue_id": venue, "person_id": f"09{t}{n:07d}", "direction": "in",
                           "event_time": (EVENT_BASE + timedelta(seconds=n % 3_000)).isoformat(),
                           "mode": "personal_qr", "scanner_id": f"phone-{self._tag}-{t}"}  # fmt: skip
                body = json.dumps([checkin]).encode()
                sent = time.monotonic()
                try:
                    conn.request("POST", "/api/checkins", body=body, headers=headers)
                    resp = conn.getresponse()
                    raw = resp.read()
                    answer = Answer(scan_id, resp.status, resp.getheader("Retry-After"), _decoded(raw), sent,
                                    time.monotonic())  # fmt: skip
                except (OSError, http.client.HTTPException) as exc:
                    answer = Answer(scan_id, 0, None, repr(exc), sent, time.monotonic())
                    conn.close()
                    conn = None
                with self._lock:
                    self._answers.append(answer)
                self._stop.wait(PACE_S)
        finally:
            if conn is not None:
                conn.close()


def _decoded(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def _stored_counts(pipeline: Pipeline) -> Counter[str]:
    """How many stored check-ins (FINAL) each scan_id has in ClickHouse; empty while the store cannot answer."""
    from qrtrace.errors import QrtraceError
    from qrtrace.sinks.clickhouse_store import ClickHouseStore

    try:
        store = ClickHouseStore(pipeline.servers.store_url)
    except QrtraceError:
        return Counter()
    try:
        result = store.query(STORED_COUNTS)
    except QrtraceError:
        return Counter()
    finally:
        store.close()
    return Counter(dict(zip(result["scan_id"], result["n"], strict=True)))


def _summary(answers: Iterable[Answer]) -> str:
    """Counts by status, the slowest answer and the commonest refusals, for a failure message."""
    answers = list(answers)
    statuses = Counter(a.status for a in answers)
    slowest = max((a.latency for a in answers), default=0.0)
    errors = Counter(str(a.body.get("error") if isinstance(a.body, dict) else a.body)[:60]
                     for a in answers if a.status != 202)  # fmt: skip
    return f"{len(answers)} requests, statuses {dict(statuses)}, slowest {slowest:.2f} s; {errors.most_common(3)}"


def _check_answers(answers: list[Answer]) -> None:
    """Every answer is a 202 for the one scan (accepted, not dead-lettered) or a 503 with a numeric Retry-After
    and a JSON {"error": sentence} body."""
    odd = [a for a in answers if a.status not in (202, 503)]
    assert not odd, f"{len(odd)} answers neither 202 nor 503, e.g. {odd[:3]}"
    hung = [a for a in answers if a.latency > HANG_S]
    assert not hung, f"{len(hung)} requests waited over {HANG_S:g} s for their answer, e.g. {hung[:3]}"
    for a in answers:
        if a.status == 202:
            assert isinstance(a.body, dict) and (a.body.get("received"), a.body.get("accepted")) == (1, 1), a
            assert a.body.get("queued") is True, a  # a 202 of the Kafka front: acknowledged by Kafka
        else:
            assert a.retry_after is not None and a.retry_after.isdigit() and int(a.retry_after) >= 1, a
            assert isinstance(a.body, dict) and set(a.body) == {"error"}, a
            error = a.body["error"]
            assert isinstance(error, str) and error.endswith(".") and len(error.split()) >= 4, a
            assert "Traceback" not in error and "KafkaError" not in error, a


def _assert_stored_exactly_once(pipeline: Pipeline, answers: list[Answer], log: Path) -> Counter[str]:
    """Start a worker and wait (bounded) until ClickHouse holds every scan answered 202; then each of them is stored
    exactly once and nothing is stored that was never sent. Returns the stored counts."""
    kept = {a.scan_id for a in answers if a.status == 202}
    sent = {a.scan_id for a in answers}
    assert kept, "no request was answered 202"
    pipeline.start_worker(log)
    stored = wait_for(lambda: _stored_counts(pipeline), lambda c: kept <= c.keys(), timeout_s=STORE_WAIT_S, every_s=3)
    tail = log.read_text(errors="replace")[-2000:]
    missing = kept - stored.keys()
    assert not missing, f"{len(missing)} of {len(kept)} scans answered 202 not stored: {sorted(missing)[:5]}\n{tail}"
    twice = {s: n for s, n in stored.items() if n != 1}
    assert not twice, f"{len(twice)} scans stored more than once, e.g. {list(twice.items())[:5]}"
    extra = stored.keys() - sent
    assert not extra, f"{len(extra)} stored scans were never sent, e.g. {sorted(extra)[:5]}"
    return stored


def _assert_on_topic_once(pipeline: Pipeline, answers: list[Answer]) -> None:
    """Every scan answered 202 is on the checkins topic exactly once (the idempotent producer, not the store's
    dedupe, kept it single)."""
    kept = {a.scan_id for a in answers if a.status == 202}
    on_topic = Counter(topic_scan_ids(pipeline.servers.broker, f"{pipeline.prefix}checkins"))
    missing = kept - on_topic.keys()
    assert not missing, f"{len(missing)} scans answered 202 are not on the topic, e.g. {sorted(missing)[:5]}"
    twice = {s: on_topic[s] for s in kept if on_topic[s] != 1}
    assert not twice, f"{len(twice)} scans answered 202 are on the topic more than once, e.g. {list(twice.items())[:5]}"


def test_kafka_stopped_under_load_refuses_at_once_then_keeps_every_202_once(pipeline: Pipeline, tmp_path: Path) -> None:
    """Issue 11, item 4 (Kafka gone): eight scanners post single check-ins to two front-door processes while the
    broker is stopped for ~8 s and started again. Proves: every answer is 202 or 503 (+ numeric Retry-After and
    a one-sentence JSON error); each request sent from 1.5 s after the broker stopped until it was started again
    was refused (503, naming Kafka) within a second, none answered 202; 202s resume after the restart (every
    request sent from 10 s after it); every scan answered 202 is on the topic once and stored in ClickHouse
    exactly once, and nothing stored was never sent."""
    pipeline.cli("venues", "import", str(SMALL_WAVE / "venues.csv"))
    kafka_state = pipeline.servers.state / "kafka"
    stop_called = stopped = start_called = started = None
    with ingest_server(pipeline, tmp_path, workers=2) as (url, token_of):
        load = Scanners(url, token_of, "kafka").start()
        try:
            time.sleep(WARM_S)
            stop_called = time.monotonic()
            script(INFRA / "kafka" / "stop.sh", kafka_state)
            stopped = time.monotonic()
            time.sleep(DOWN_S)
            start_called = time.monotonic()
            script(INFRA / "kafka" / "start.sh", kafka_state)
            started = time.monotonic()
            time.sleep(AFTER_S)
        finally:
            answers = load.stop()
            if stop_called is not None and started is None:  # never leave the session's broker down
                script(INFRA / "kafka" / "start.sh", kafka_state)
    assert stop_called is not None and stopped is not None and start_called is not None and started is not None
    phases = {
        "before the stop": [a for a in answers if a.sent < stop_called],
        "while stopping": [a for a in answers if stop_called <= a.sent < stopped + REFUSE_AFTER_S],
        "broker away": [a for a in answers if stopped + REFUSE_AFTER_S <= a.sent < start_called],
        "while starting": [a for a in answers if start_called <= a.sent < started],
        "reconnecting": [a for a in answers if started <= a.sent < started + RECOVER_S],
        "recovered": [a for a in answers if a.sent >= started + RECOVER_S],
    }
    report = "\n".join(f"  {name}: {_summary(group)}" for name, group in phases.items())
    print(f"\nKafka stopped {stopped - stop_called:.1f} s after stop.sh began, up {started - start_called:.1f} s after "
          f"start.sh began\n{report}")  # fmt: skip

    _check_answers(answers)
    assert any(a.status == 202 for a in phases["before the stop"]), report
    away = phases["broker away"]
    assert len(away) >= 100, f"too few requests while the broker was away to judge\n{report}"
    slow = [a for a in away if a.latency > REFUSE_WITHIN_S]
    assert not slow, f"{len(slow)} answers over {REFUSE_WITHIN_S} s with the broker away, e.g. {slow[:3]}\n{report}"
    accepted = [a for a in away if a.status == 202]
    assert not accepted, f"{len(accepted)} requests answered 202 while every broker was down, e.g. {accepted[:3]}"
    assert all("Kafka" in a.body["error"] for a in away), away[:3]
    recovered = phases["recovered"]
    assert len(recovered) >= 50, f"too few requests after the restart to judge\n{report}"
    refused = [a for a in recovered if a.status != 202]
    assert not refused, f"{len(refused)} of {len(recovered)} requests refused {RECOVER_S} s after the restart, " \
                        f"e.g. {refused[:3]}\n{report}"  # fmt: skip

    _assert_on_topic_once(pipeline, answers)
    stored = _assert_stored_exactly_once(pipeline, answers, tmp_path / "worker.log")
    refused_but_stored = {a.scan_id for a in answers if a.status == 503} & stored.keys()
    print(f"  stored {len(stored)} scans; {len(refused_but_stored)} of them had been answered 503 (delivered late)")


def test_clickhouse_away_scanners_keep_getting_202s(pipeline: Pipeline, tmp_path: Path) -> None:
    """Issue 11, item 4 (the store gone): with the venue cache warm, ClickHouse is stopped for longer than the
    cache's refresh period. Proves the store is not on a scanner request's path: every single-scan request is
    answered 202 within 2 s (Kafka keeps it; a failed venue refresh falls back to the cache), and once the store
    is back a worker stores each of those scans exactly once (nothing stored that was never sent)."""
    pipeline.cli("venues", "import", str(SMALL_WAVE / "venues.csv"))
    threads = 4
    with ingest_server(pipeline, tmp_path, workers=2) as (url, token_of):
        warm = Scanners(url, token_of, "warm", threads=threads).start()
        time.sleep(2.0)  # both processes' producers and venue caches are made by their first requests
        answers = warm.stop()
        _check_answers(answers)
        assert all(a.status == 202 for a in answers), _summary(answers)
        pipeline.servers.stop_clickhouse()
        try:
            away = Scanners(url, token_of, "away", threads=threads).start()
            try:
                time.sleep(CH_AWAY_S)
            finally:
                during = away.stop()
        finally:
            pipeline.servers.start_clickhouse()
    print(f"\nwarm: {_summary(answers)}\nClickHouse away: {_summary(during)}")
    _check_answers(during)
    assert len(during) >= 100, _summary(during)
    refused = [a for a in during if a.status != 202]
    assert not refused, f"{len(refused)} of {len(during)} refused while ClickHouse was away, e.g. {refused[:3]}"
    slow = [a for a in during if a.latency > CH_ANSWER_WITHIN_S]
    assert not slow, f"{len(slow)} answers took over {CH_ANSWER_WITHIN_S} s, e.g. {slow[:3]}"
    server_log = (tmp_path / "ingest-server.log").read_text(errors="replace")
    assert "using the cache" in server_log, "no venue refresh failed meanwhile: the outage proved nothing"
    _assert_stored_exactly_once(pipeline, answers + during, tmp_path / "worker.log")
