"""The Confluent REST client, against a minimal stand-in that implements the four calls it makes.

No Confluent registry runs on this machine; the stand-in keeps the protocol honest (paths, content
type, JSON shapes), and the wire format round trip proves ids and schemas are used consistently.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from qrtrace.schemas.confluent_registry import confluent_registry_with_packaged
from qrtrace.schemas.registry import CHECKINS_SUBJECT, SchemaError
from qrtrace.schemas.wire import decode_batch, encode_batch


class _Registry(BaseHTTPRequestHandler):
    schemas: ClassVar[list[str]] = []
    subjects: ClassVar[dict[str, list[int]]] = {}

    def _reply(self, code: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # POST /subjects/{s}/versions
        assert self.headers["Content-Type"] == "application/vnd.schemaregistry.v1+json"
        subject = self.path.split("/")[2]
        text = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["schema"]
        if text not in self.schemas:
            self.schemas.append(text)
        sid = self.schemas.index(text) + 1
        versions = self.subjects.setdefault(subject, [])
        if sid not in versions:
            versions.append(sid)
        self._reply(200, {"id": sid})

    def do_GET(self) -> None:  # /schemas/ids/{id} and /subjects/{s}/versions/latest
        parts = self.path.strip("/").split("/")
        if parts[:2] == ["schemas", "ids"] and int(parts[2]) <= len(self.schemas):
            self._reply(200, {"schema": self.schemas[int(parts[2]) - 1]})
        elif parts[0] == "subjects" and parts[1] in self.subjects:
            self._reply(200, {"id": self.subjects[parts[1]][-1]})
        else:
            self._reply(404, {"error_code": 40403, "message": "Schema not found"})

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def registry_url() -> Iterator[str]:
    _Registry.schemas, _Registry.subjects = [], {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_packaged_schemas_register_and_round_trip(registry_url: str) -> None:
    registry = confluent_registry_with_packaged(registry_url)
    schema_id, schema = registry.latest(CHECKINS_SUBJECT)
    record = {"scan_id": "s", "venue_id": "V", "person": "ab", "direction": "in", "event_time_us": 1,
              "offset_minutes": 420, "mode": "manual", "scanner_id": "S", "declaration_sealed": None,
              "zone": ""}  # fmt: skip
    again = confluent_registry_with_packaged(registry_url)  # a second process finds the same ids
    assert again.latest(CHECKINS_SUBJECT)[0] == schema_id
    assert decode_batch(again, encode_batch(schema_id, schema, [record])) == [record]


def test_unreachable_or_refusing_registry_is_one_sentence() -> None:
    with pytest.raises(SchemaError, match="cannot be reached"):
        confluent_registry_with_packaged("http://127.0.0.1:9")
