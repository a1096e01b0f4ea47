"""`qrtrace serve`: the API and the console in one process that owns the store."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Iterator

import orjson

from qrtrace.access import Principal, Role
from qrtrace.api.tokens import TokenFile
from qrtrace.errors import InputError
from qrtrace.settings import Settings
from qrtrace.sinks.audit import now_us

DEMO_TOKENS = "demo-tokens.json"
DEMO_LABEL = "demo"
DEMO_TOKEN_DAYS = 30
STARTUP_TIMEOUT_S = 120.0  # a worker opens the store and its front before it listens
GIL_SWITCH_S = 0.0005
RESTARTS = 10  # workers started again after dying, over the server's life, before it gives up


def issue_demo_tokens(settings: Settings, venue_id: str, commune_code: str, district_code: str) -> dict[str, str]:
    """One token per role for the demo district, replacing the previous demo's; kept 0600 in the store."""
    book = TokenFile(settings.tokens_path)
    book.drop_label(DEMO_LABEL)
    expires = now_us() + DEMO_TOKEN_DAYS * 86_400_000_000
    principals = [
        Principal("demo-scanner", Role.SCANNER, venues=frozenset({venue_id})),
        Principal("demo-venue-owner", Role.VENUE_OWNER, venues=frozenset({venue_id})),
        Principal("demo-commune-officer", Role.COMMUNE_OFFICER, commune_code=commune_code),
        Principal("demo-district-officer", Role.DISTRICT_OFFICER, district_code=district_code),
        Principal("demo-epidemiologist", Role.EPIDEMIOLOGIST),
        Principal("demo-admin", Role.ADMIN),
        Principal("demo-health-station", Role.HEALTH_STATION, commune_code=commune_code),
    ]
    tokens = {str(p.role): book.issue(p, expires, DEMO_LABEL).token for p in principals}
    path = settings.store_path / DEMO_TOKENS
    path.touch(mode=0o600)
    path.write_bytes(orjson.dumps(tokens, option=orjson.OPT_INDENT_2))
    return tokens


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _listen(host: str, port: int, reuse_port: bool) -> socket.socket:
    """A bound socket (SO_REUSEPORT when several processes serve one port: the kernel spreads connections)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InputError(f"Cannot listen on {host}:{port} ({exc.strerror}); choose another --port.") from None
    return sock


def run(settings: Settings, host: str, port: int, workers: int = 1, scanners_only: bool = False) -> None:
    """Serve until interrupted (SIGINT / SIGTERM): the API and the console, or only the scanner door
    (`qrtrace ingest-server`). With `workers` > 1, as many processes on one port (SO_REUSEPORT), each with
    its own front onto Kafka; the embedded store belongs to one process, so several need a broker."""
    if workers > 1 and not settings.broker:
        raise InputError("Several --workers need a broker (QRTRACE_BROKER): the embedded store and its processor "
                         "state belong to one process.")  # fmt: skip
    # Bind first, then print the address: with --port 0 the printed port is the one listening (choosing a
    # free port and binding it later could race with another process).
    sock = _listen(host, port, reuse_port=workers > 1)
    port = sock.getsockname()[1]
    if workers == 1:
        try:
            _serve(settings, host, sock, scanners_only, banner=True)
        finally:
            sock.close()
        return
    try:
        _supervise(settings, host, port, workers, scanners_only)
    finally:
        sock.close()  # held (bound, not listening) so that no other program takes the port meanwhile


def _banner(settings: Settings, host: str, port: int, scanners_only: bool, workers: int) -> None:
    url = f"http://{host}:{port}/"
    if scanners_only:
        print(f"qrtrace ingest-server: listening on {url} (POST /api/checkins, {workers} worker(s))", flush=True)
        return
    print(f"qrtrace console: {url}   API docs: {url}docs", flush=True)
    demo = settings.store_path / DEMO_TOKENS if settings.is_embedded_store else None
    if demo is not None and demo.exists():
        print(f"demo sign-in links (tokens in {demo}):", flush=True)
        for role, token in orjson.loads(demo.read_bytes()).items():
            print(f"  {role:17} {url}#token={token}", flush=True)
    else:
        print("sign in with a token from `qrtrace tokens issue`", flush=True)


def _serve(settings: Settings, host: str, sock: socket.socket, scanners_only: bool, banner: bool,
           ready: object = None) -> None:  # fmt: skip
    """One serving process: the service (which owns the store) and uvicorn on `sock`."""
    import uvicorn

    from qrtrace.api.app import create_app
    from qrtrace.api.service import ApiService

    # The event loop thread parses requests while the front's thread runs passes (edge, produce or store),
    # which release the GIL at every pyarrow, librdkafka or chDB call; with the default 5 ms switch interval
    # each of those waits up to 5 ms to get it back while the loop is busy, so under steady load a pass took
    # 100 ms or more and answers waited for it (measured: open-loop 2,000/s, p50 100-250 ms at 5 ms).
    sys.setswitchinterval(GIL_SWITCH_S)
    svc = ApiService(settings)
    if banner:
        _banner(settings, host, sock.getsockname()[1], scanners_only, 1)

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if ready is not None:
                ready.set()  # type: ignore[attr-defined]  # the supervisor's multiprocessing Event

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                yield
                # uvicorn raises the signal again once its requests are answered, which would end the process
                # before the service is closed (the Kafka front flushed): close it, then exit 0.
                self._captured_signals.clear()

    from qrtrace.api.scanner_door import ScannerDoor

    # The door also sits inside the application (its outermost middleware, for in-process clients); in front
    # of it here, a scanner's request skips FastAPI's own layers too (a tenth of the request's cost).
    app = ScannerDoor(create_app(svc, scanners_only=scanners_only), svc)
    server = Server(uvicorn.Config(app, host=host, log_level="warning", access_log=False))
    try:
        server.run(sockets=[sock])
    finally:
        svc.close()
        sys.stdout.flush()


def _worker(settings: Settings, host: str, port: int, scanners_only: bool, ready: object) -> None:
    """A worker process (spawned): its own socket on the shared port, its own service and front."""
    sock = _listen(host, port, reuse_port=True)
    try:
        _serve(settings, host, sock, scanners_only, banner=False, ready=ready)
    finally:
        sock.close()


def _supervise(settings: Settings, host: str, port: int, workers: int, scanners_only: bool) -> None:
    """Start `workers` processes on the port, print the banner once all listen, and stop them all on SIGINT or
    SIGTERM; a worker that dies is started again (at most RESTARTS times, then everything stops)."""
    import multiprocessing
    import signal
    import tempfile
    import time

    metrics_dir = tempfile.TemporaryDirectory(prefix="qrtrace-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir.name  # the workers' counters, summed on /metrics
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no store, thread or lock forked half-made

    def start() -> tuple[multiprocessing.process.BaseProcess, object]:
        ready = ctx.Event()
        proc = ctx.Process(target=_worker, args=(settings, host, port, scanners_only, ready), daemon=False)
        proc.start()
        return proc, ready

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    procs = [start() for _ in range(workers)]
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        for proc, ready in procs:
            while not ready.wait(0.2):  # type: ignore[attr-defined]
                if stopping or not proc.is_alive() or time.monotonic() > deadline:
                    raise InputError("A server worker did not start; see the messages above.")
        _banner(settings, host, port, scanners_only, workers)
        restarts = 0
        while not stopping:
            time.sleep(0.2)
            for i, (proc, _ready) in enumerate(procs):
                if not proc.is_alive() and not stopping:
                    from prometheus_client import multiprocess

                    multiprocess.mark_process_dead(proc.pid)
                    restarts += 1
                    if restarts > RESTARTS:
                        raise InputError(f"Server workers kept failing ({restarts} restarts); stopping.")
                    print(f"worker {proc.pid} exited ({proc.exitcode}); starting another", file=sys.stderr, flush=True)
                    procs[i] = start()
    finally:
        for proc, _ in procs:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: uvicorn finishes its requests, the front flushes
        for proc, _ in procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=10)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        metrics_dir.cleanup()
