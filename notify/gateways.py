"""Gateways: where a message with its phone number goes. Chosen by a setting (QRTRACE_NOTIFY_GATEWAY or the
CLI's --gateway), never by an API caller.

- `webhook:https://host/path` (or http://127.0.0.1:PORT/... for a local bridge): a JSON POST per message in
  the shape SMS providers take ({"message_id", "to", "text", "lang", "tier"}) with `Idempotency-Key:
  <message_id>`, over a few kept-alive connections in parallel; retried with back-off (notify/backoff.py).
- `file:PATH`: JSON lines (0600) for offices that send by hand; a message already in the file is not
  appended again (the file is read on open), so a restart never writes one twice.
- `kafka:TOPIC` (default `notifications`): keyed by message id, idempotent producer, acks=all.

Every gateway reports one Outcome per message it was given, from the thread that learnt it.
"""

from __future__ import annotations

import http.client
import os
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import orjson

from qrtrace.errors import InputError
from qrtrace.notify.backoff import PERMANENT, RETRY, SENT, Backoff, classify
from qrtrace.notify.messages import Message
from qrtrace.settings import Settings

DEFAULT_TOPIC = "notifications"
REQUEST_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message and the number it goes to (opened from the vault for this send only)."""

    message: Message
    to: str


@dataclass(frozen=True, slots=True)
class Outcome:
    message_id: str
    delivered: bool
    reason: str
    attempts: int


OnOutcome = Callable[[Outcome], None]


class Gateway(Protocol):
    kind: str

    def start(self, items: Sequence[Outgoing], on_outcome: OnOutcome) -> Callable[[], None]:
        """Begin sending every item; `on_outcome` is called once per item (in any order, from any thread).
        Returns the wait: it returns once every item's outcome was reported (or raises what failed)."""

    def deliver(self, items: Sequence[Outgoing], on_outcome: OnOutcome) -> None:
        """`start` and wait."""

    def close(self) -> None: ...


def _done() -> None:
    return None


def payload(item: Outgoing) -> bytes:
    m = item.message
    return orjson.dumps({"message_id": m.message_id, "to": item.to, "text": m.text, "lang": m.lang, "tier": m.tier})


def open_gateway(spec: str | None, settings: Settings) -> Gateway:
    """The gateway a spec names; one sentence if it names none."""
    if not spec:
        raise InputError("No gateway: give --gateway webhook:URL | file:PATH | kafka:TOPIC (or set "
                         "QRTRACE_NOTIFY_GATEWAY).")  # fmt: skip
    kind, _, rest = spec.partition(":")
    backoff = Backoff(max_attempts=max(1, settings.notify_max_attempts), max_total_s=settings.notify_max_seconds)
    if kind == "webhook":
        return WebhookGateway(rest, backoff, settings.notify_workers)
    if kind == "file":
        if not rest:
            raise InputError("The file gateway needs a path: file:PATH.")
        return FileGateway(Path(rest).expanduser())
    if kind == "kafka":
        if not settings.broker:
            raise InputError("The kafka gateway needs a broker: set --broker or QRTRACE_BROKER.")
        return KafkaGateway(settings.broker, settings.topic_prefix + (rest or DEFAULT_TOPIC), settings.partitions)
    raise InputError(f"Unknown gateway {kind!r}; use webhook:URL, file:PATH or kafka:TOPIC.")


# -- webhook -----------------------------------------------------------------------------------------------


class WebhookGateway:
    """POSTs over `workers` kept-alive connections; each message retried per `backoff`."""

    kind = "webhook"

    def __init__(self, url: str, backoff: Backoff, workers: int = 8, sleep: Callable[[float], None] = time.sleep,
                 ) -> None:  # fmt: skip
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(f"The webhook gateway needs an http(s) URL, not {url!r}.")
        self.scheme, self.host = parts.scheme, parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.backoff, self.workers, self._sleep = backoff, max(1, workers), sleep
        self._waits = backoff.schedule()
        self._queue: queue.SimpleQueue[tuple[Outgoing, _Batch] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def _connect(self) -> http.client.HTTPConnection:
        if self.scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                self.host, self.port, timeout=REQUEST_TIMEOUT_S, context=ssl.create_default_context()
            )
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT_S)
        conn.connect()
        # http.client writes the headers and the body in two sends: without this, Nagle holds the body back
        # until the headers are acknowledged.
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def post(self, conn: http.client.HTTPConnection, item: Outgoing) -> tuple[int, str, float | None]:
        """One POST: (status, reason, Retry-After seconds); raises OSError/HTTPException on a broken exchange."""
        conn.request("POST", self.path, body=payload(item), headers={
            "Content-Type": "application/json", "Idempotency-Key": item.message.message_id})  # fmt: skip
        response = conn.getresponse()
        body = response.read(2048)
        retry_after = response.getheader("Retry-After")
        wait = float(retry_after) if retry_after and retry_after.isdigit() else None
        reason = f"HTTP {response.status}"
        if response.status >= 400:
            text = body.decode("utf-8", "replace").strip().replace("\n", " ")[:200]
            reason += f": {text}" if text else f" {response.reason}"
        if response.will_close:
            conn.close()
        return response.status, reason, wait

    def send_one(self, conn_box: list[http.client.HTTPConnection | None], item: Outgoing) -> Outcome:
        """Attempts until delivered, refused for good, or out of attempts/time."""
        reason = ""
        for attempt in range(1, len(self._waits) + 2):
            retry_after = None
            try:
                if conn_box[0] is None:
                    conn_box[0] = self._connect()
                status, reason, retry_after = self.post(conn_box[0], item)
                verdict = classify(status)
            except (OSError, http.client.HTTPException) as exc:
                if conn_box[0] is not None:
                    conn_box[0].close()
                conn_box[0] = None
                verdict = RETRY
                reason = _network_reason(exc)
            if verdict == SENT:
                return Outcome(item.message.message_id, True, "", attempt)
            if verdict == PERMANENT:
                return Outcome(item.message.message_id, False, reason, attempt)
            if attempt > len(self._waits):
                break
            wait = self._waits[attempt - 1]
            self._sleep(min(max(wait, retry_after or 0.0), self.backoff.cap_s))
        return Outcome(item.message.message_id, False, f"{reason} (after {attempt} attempts)", attempt)

    def start(self, items: Sequence[Outgoing], on_outcome: OnOutcome) -> Callable[[], None]:
        """Queue a batch for the worker threads (started once, connections kept across batches); returns the
        wait for this batch. The caller prepares its next batch meanwhile."""
        if not self._threads:
            for i in range(self.workers):
                thread = threading.Thread(target=self._work, name=f"qrtrace-notify-{i}", daemon=True)
                thread.start()
                self._threads.append(thread)
        batch = _Batch(len(items), on_outcome)
        for item in items:
            self._queue.put((item, batch))
        return batch.wait

    def deliver(self, items: Sequence[Outgoing], on_outcome: OnOutcome) -> None:
        self.start(items, on_outcome)()

    def _work(self) -> None:
        box: list[http.client.HTTPConnection | None] = [None]
        try:
            while (job := self._queue.get()) is not None:
                item, batch = job
                try:
                    if batch.error is None:  # after a failure (the journal could not be written) send no more
                        batch.on_outcome(self.send_one(box, item))
                except BaseException as exc:  # reported by the batch's wait: never a silently lost message
                    batch.error = batch.error or exc
                finally:
                    batch.count_down()
        finally:
            if box[0] is not None:
                box[0].close()

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=REQUEST_TIMEOUT_S + self.backoff.max_total_s)
        self._threads.clear()


class _Batch:
    """A batch in flight: how many items are left, and the first error a worker met."""

    def __init__(self, n: int, on_outcome: OnOutcome) -> None:
        self.left, self.on_outcome = n, on_outcome
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        if n == 0:
            self._done.set()

    def count_down(self) -> None:
        with self._lock:
            self.left -= 1
            if self.left == 0:
                self._done.set()

    def wait(self) -> None:
        self._done.wait()
        if self.error is not None:
            raise self.error


def _network_reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    return f"connection failed ({type(exc).__name__})"


# -- file --------------------------------------------------------------------------------------------------


class FileGateway:
    """JSON lines for sending by hand. The file is its own journal: ids already in it are not written again."""

    kind = "file"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        data = path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end != len(data):  # a line cut short by a kill: that message was not written
            os.ftruncate(self._fd, end)
        self._written = {orjson.loads(line)["message_id"] for line in data[:end].splitlines() if line.strip()}

    def deliver(self, items: Sequence[Outgoing], on_outcome: OnOutcome) -> None:
        for item in items:
            mid = item.message.message_id
            if mid not in self._written:
                os.write(self._fd, payload(item) + b"\n")
                self._written.add(mid)
            on_outcome(Outcome(mid, True, "", 1))
        os.fsync(self._fd)

    def start(self, items: Sequence[Outgoing], on_outcome: OnOutcome) -> Callable[[], None]:
        self.deliver(items, on_outcome)
        return _done

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


# -- kafka -------------------------------------------------------------------------------------------------


class KafkaGateway:
    """Produce to a topic keyed by message id: idempotent (no duplicate from the producer's own retries),
    acks=all; an outcome per message from its delivery report."""

    kind = "kafka"

    def __init__(self, broker: str, topic: str, partitions: int = 4, timeout_s: float = 120.0) -> None:
        from confluent_kafka import Producer

        from qrtrace.producers.kafka_producer import producer_config

        config = {**producer_config(broker), "linger.ms": 5, "message.timeout.ms": int(timeout_s * 1000)}
        config.pop("partitioner", None)  # keyed by message id: the default partitioner spreads them
        self.topic, self.timeout_s = topic, timeout_s
        ensure_topic(broker, topic, partitions)
        self._producer = Producer(config)

    def deliver(self, items: Sequence[Outgoing], on_outcome: OnOutcome) -> None:
        left = {"n": len(items)}

        def report(mid: str) -> Callable[[object, object], None]:
            def on_delivery(err: object, _msg: object) -> None:
                left["n"] -= 1
                on_outcome(Outcome(mid, err is None, "" if err is None else f"kafka: {err}", 1))

            return on_delivery

        for item in items:
            mid = item.message.message_id
            while True:
                try:
                    self._producer.produce(self.topic, key=mid.encode(), value=payload(item), on_delivery=report(mid))
                    break
                except BufferError:
                    self._producer.poll(0.1)
            self._producer.poll(0)
        deadline = time.monotonic() + self.timeout_s + 5
        while left["n"] and time.monotonic() < deadline:
            self._producer.flush(1.0)
        if left["n"]:
            raise InputError(f"Kafka did not confirm {left['n']} notifications in time; run the send again.")

    def start(self, items: Sequence[Outgoing], on_outcome: OnOutcome) -> Callable[[], None]:
        self.deliver(items, on_outcome)
        return _done

    def close(self) -> None:
        self._producer.flush(5.0)


# The topic carries phone numbers (it is a gateway: the SMS bridge reading it needs them), so it keeps them
# for a bounded time only; restrict it by ACL to the bridge's principal in production.
TOPIC_RETENTION_MS = 3 * 86_400_000


def ensure_topic(broker: str, topic: str, partitions: int) -> None:
    """Create the notifications topic if it is missing (the project's brokers do not auto-create topics)."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    client = AdminClient({"bootstrap.servers": broker, "log_level": 0})
    if topic in client.list_topics(timeout=30).topics:
        return
    new = NewTopic(topic, num_partitions=partitions, replication_factor=-1,
                   config={"retention.ms": str(TOPIC_RETENTION_MS)})  # fmt: skip
    try:
        client.create_topics([new], operation_timeout=30, request_timeout=30)[topic].result()
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise InputError(f"Cannot create the Kafka topic {topic}: {exc.args[0].str()}.") from None
