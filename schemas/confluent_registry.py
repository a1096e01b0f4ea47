"""A Confluent-compatible schema registry over its REST API, used when QRTRACE_SCHEMA_REGISTRY_URL is set.

Same surface as the local `SchemaRegistry` (register / schema_by_id / latest), so the producer and the
workers do not care which one they hold. The server enforces its own compatibility mode; the packaged
schemas are registered oldest first, so BACKWARD mode accepts them.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import fastavro

from qrtrace.schemas.registry import PACKAGED_SUBJECTS, SchemaError, load_packaged

_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class ConfluentRegistry:
    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self._url = url.rstrip("/")
        self._timeout = timeout_s
        self._parsed: dict[int, Any] = {}
        self._latest: dict[str, int] = {}
        self._lock = threading.Lock()

    def _call(self, method: str, path: str, body: dict | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self._url + path, data=data, method=method,
                                         headers={"Content-Type": _CONTENT_TYPE, "Accept": _CONTENT_TYPE})  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # the configured registry URL
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:200]
            raise SchemaError(
                f"The schema registry at {self._url} refused {method} {path}: {exc.code} {detail}"
            ) from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise SchemaError(f"The schema registry at {self._url} cannot be reached ({exc}).") from exc

    def register(self, subject: str, schema: dict) -> int:
        """Register (or find) `schema` under `subject`; returns the registry's global id."""
        quoted = urllib.parse.quote(subject, safe="")
        schema_id = int(self._call("POST", f"/subjects/{quoted}/versions", {"schema": json.dumps(schema)})["id"])
        with self._lock:
            self._parsed.setdefault(schema_id, fastavro.parse_schema(schema))
            self._latest[subject] = schema_id
        return schema_id

    def schema_by_id(self, schema_id: int) -> Any:
        with self._lock:
            parsed = self._parsed.get(schema_id)
        if parsed is None:
            text = self._call("GET", f"/schemas/ids/{int(schema_id)}")["schema"]
            parsed = fastavro.parse_schema(json.loads(text))
            with self._lock:
                self._parsed[schema_id] = parsed
        return parsed

    def latest(self, subject: str) -> tuple[int, Any]:
        with self._lock:
            known = self._latest.get(subject)
        if known is None:
            quoted = urllib.parse.quote(subject, safe="")
            known = int(self._call("GET", f"/subjects/{quoted}/versions/latest")["id"])
        return known, self.schema_by_id(known)


def confluent_registry_with_packaged(url: str) -> ConfluentRegistry:
    """A client for `url` with qrtrace's packaged schemas registered (idempotent on the server)."""
    registry = ConfluentRegistry(url)
    for subject, (name, versions) in PACKAGED_SUBJECTS.items():
        for version in versions:
            registry.register(subject, load_packaged(name, version))
    return registry


def registry_for(url: str | None) -> Any:
    """The Confluent registry when a URL is configured, else the local registry."""
    from qrtrace.schemas.registry import default_registry

    return confluent_registry_with_packaged(url) if url else default_registry()
