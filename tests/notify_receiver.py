"""A local SMS-provider stand-in for the notification tests and benchmark: `python tests/notify_receiver.py
--port P --record FILE [--fail-every 3] [--delay-ms 0] [--max-seconds 600] [--max-requests N]`.

Listens on 127.0.0.1 only (HTTP/1.1, keep-alive), in threads (at most --threads at once). Every
`--fail-every`-th request (counted in this process) is answered 500 and not accepted. Any other POST is
accepted once per Idempotency-Key, as providers that honour the header do: a repeated key is answered 200
again without a second acceptance. Every POST that reached acceptance is one line in the record file
({"message_id", "key", "repeat"}), written with one write(2) before the answer, so a kill of this process
loses nothing it answered 2xx; on start it reads the file back (a restarted provider remembers its keys).
It stops by itself after --max-seconds or --max-requests (bounded), or when killed by its pid.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson


class Receiver(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, record: Path, fail_every: int, delay_s: float, threads: int) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.fail_every, self.delay_s = fail_every, delay_s
        self.slots = threading.BoundedSemaphore(threads)
        self.lock = threading.Lock()
        self.requests = 0
        data = record.read_bytes() if record.exists() else b""
        self.accepted = {orjson.loads(line)["key"] for line in data.splitlines() if line.endswith(b"}")}
        self.fd = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def process_request(self, request, client_address):  # type: ignore[no-untyped-def]
        self.slots.acquire()  # bounded: at most `threads` connections served at once
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address):  # type: ignore[no-untyped-def]
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Receiver

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # headers and body: no Nagle wait

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, body: dict) -> None:
        data = orjson.dumps(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        srv = self.server
        if srv.delay_s:
            time.sleep(srv.delay_s)
        with srv.lock:
            srv.requests += 1
            fail = srv.fail_every and srv.requests % srv.fail_every == 0
        if fail:
            self._answer(500, {"error": "temporary failure"})
            return
        try:
            message = orjson.loads(body)
            mid, to, text = message["message_id"], message["to"], message["text"]
        except (ValueError, KeyError, TypeError):
            self._answer(400, {"error": "message_id, to and text are required"})
            return
        if not to or not text:
            self._answer(400, {"error": "empty number or text"})
            return
        key = self.headers.get("Idempotency-Key") or ""
        with srv.lock:
            repeat = key in srv.accepted
            srv.accepted.add(key)
            os.write(srv.fd, orjson.dumps({"message_id": mid, "key": key, "repeat": repeat}) + b"\n")
        self._answer(200, {"id": key, "status": "accepted", "repeat": repeat})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--record", type=Path, required=True)
    ap.add_argument("--fail-every", type=int, default=0)
    ap.add_argument("--delay-ms", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=64)
    ap.add_argument("--max-seconds", type=float, default=600.0)
    ap.add_argument("--max-requests", type=int, default=5_000_000)
    args = ap.parse_args()
    srv = Receiver(args.port, args.record, args.fail_every, args.delay_ms / 1000, args.threads)
    started = time.monotonic()

    def watchdog() -> None:
        while time.monotonic() - started < args.max_seconds and srv.requests < args.max_requests:
            time.sleep(0.2)
        srv.shutdown()

    threading.Thread(target=watchdog, daemon=True).start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    srv.serve_forever(poll_interval=0.1)


if __name__ == "__main__":
    main()
