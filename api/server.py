"""`qrtrace serve`: the API and the console in one process that owns the store."""

from __future__ import annotations

import socket
import sys

import orjson

from qrtrace.access import Principal, Role
from qrtrace.api.tokens import TokenFile
from qrtrace.errors import InputError
from qrtrace.settings import Settings
from qrtrace.sinks.audit import now_us

DEMO_TOKENS = "demo-tokens.json"
DEMO_LABEL = "demo"
DEMO_TOKEN_DAYS = 30


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


def run(settings: Settings, host: str, port: int) -> None:
    """Open the store, print where the console is, serve until interrupted (SIGINT / SIGTERM)."""
    import uvicorn

    from qrtrace.api.app import create_app
    from qrtrace.api.service import ApiService

    # Bind first, then print the address and hand the socket to uvicorn: with --port 0 the printed port is
    # the one listening (choosing a free port and binding it later could race with another process).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InputError(f"Cannot listen on {host}:{port} ({exc.strerror}); choose another --port.") from None
    port = sock.getsockname()[1]
    svc = ApiService(settings)
    url = f"http://{host}:{port}/"
    print(f"qrtrace console: {url}   API docs: {url}docs", flush=True)
    demo = settings.store_path / DEMO_TOKENS if settings.is_embedded_store else None
    if demo is not None and demo.exists():
        print(f"demo sign-in links (tokens in {demo}):", flush=True)
        for role, token in orjson.loads(demo.read_bytes()).items():
            print(f"  {role:17} {url}#token={token}", flush=True)
    else:
        print("sign in with a token from `qrtrace tokens issue`", flush=True)
    server = uvicorn.Server(uvicorn.Config(create_app(svc), host=host, port=port, log_level="warning",
                                           access_log=False))  # fmt: skip
    try:
        server.run(sockets=[sock])
    finally:
        svc.close()
        sock.close()
        sys.stdout.flush()
