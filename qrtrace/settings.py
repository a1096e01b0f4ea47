"""One settings object: defaults run the embedded mode; environment variables and CLI flags override.

The environment is read here and nowhere else; everything below receives a `Settings`.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta, timezone
from pathlib import Path

from qrtrace.errors import InputError

VIETNAM = timezone(timedelta(hours=7), "ICT")


def _default_key_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "qrtrace" / "keys.json"


@dataclass(frozen=True)
class Settings:
    """Everything configurable. Field docs name the environment variable that sets each one."""

    store: str = ".qrtrace"  # QRTRACE_STORE: a directory (embedded chDB) or chdb:///path
    key_file: Path = field(default_factory=_default_key_file)  # QRTRACE_KEY_FILE: HMAC + vault + QR keys
    token_file: Path | None = None  # QRTRACE_TOKEN_FILE: API token hashes (default: tokens.json beside the keys)
    lang: str = "vi"  # QRTRACE_LANG: vi | en
    display_tz: timezone = VIETNAM  # times are stored in UTC and shown in this offset
    actor: str = field(default_factory=lambda: os.environ.get("USER") or getpass.getuser())  # QRTRACE_ACTOR
    batch_size: int = 50_000  # QRTRACE_BATCH_SIZE: events per processing batch
    allowed_lateness_minutes: int = 30  # QRTRACE_ALLOWED_LATENESS_MINUTES: reorder buffer for late events
    dedupe_window_hours: int = 48  # QRTRACE_DEDUPE_WINDOW_HOURS: how long a scan_id is remembered
    occupancy_window_minutes: int = 15  # QRTRACE_OCCUPANCY_WINDOW_MINUTES
    retention_days: int = 21  # QRTRACE_RETENTION_DAYS: whole day partitions older than this are dropped
    broker: str | None = None  # QRTRACE_BROKER: Kafka bootstrap servers; absent = embedded in-process processing
    schema_registry_url: str | None = None  # QRTRACE_SCHEMA_REGISTRY_URL: Confluent-compatible; else local registry
    partitions: int = 4  # QRTRACE_PARTITIONS: partitions of the checkins topic (>= workers)
    topic_prefix: str = ""  # QRTRACE_TOPIC_PREFIX: namespaces topics (several pipelines on one cluster)
    worker_group: str = "qrtrace-worker"  # QRTRACE_WORKER_GROUP: Faust app id = consumer group
    metrics_port: int | None = None  # QRTRACE_METRICS_PORT: serve Prometheus /metrics here
    metrics_urls: tuple[str, ...] = ()  # QRTRACE_METRICS_URLS: comma-separated /metrics of workers (ops page)
    auth_failures_per_client: int = 10  # QRTRACE_AUTH_FAILURES_PER_CLIENT: failed sign-ins per address per window
    auth_failures_per_token: int = 20  # QRTRACE_AUTH_FAILURES_PER_TOKEN: failed sign-ins per token id per window
    auth_failure_window_seconds: int = 60  # QRTRACE_AUTH_FAILURE_WINDOW_SECONDS: then 429 with Retry-After
    grace_minutes: int = 30  # trace default
    min_overlap_minutes: int = 0  # trace default
    depth: int = 2  # trace default

    @property
    def is_embedded_store(self) -> bool:
        return not self.store.startswith(("clickhouse://", "http://", "https://"))

    @property
    def state_dir(self) -> Path:
        """Where in-process ingest keeps processor state: inside an embedded store, else per server URL."""
        if self.is_embedded_store:
            return self.store_path / "state"
        slug = "".join(c if c.isalnum() else "_" for c in self.store)
        return Path.home() / ".local" / "state" / "qrtrace" / slug

    @property
    def tokens_path(self) -> Path:
        return self.token_file if self.token_file is not None else self.key_file.with_name("tokens.json")

    @property
    def store_path(self) -> Path:
        """Directory of the embedded store (`chdb:///abs/path` and plain paths both accepted)."""
        raw = self.store
        if raw.startswith("chdb://"):
            raw = raw[len("chdb://") :] or "/"
        elif "://" in raw:
            raise InputError(f"The store {self.store!r} is not an embedded store; use a directory or chdb:///path.")
        return Path(raw).expanduser().resolve()

    def with_overrides(self, **overrides: object) -> Settings:
        """A copy with the given non-None fields replaced (CLI flags win over the environment)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


_INT_ENV = {
    "QRTRACE_BATCH_SIZE": "batch_size",
    "QRTRACE_ALLOWED_LATENESS_MINUTES": "allowed_lateness_minutes",
    "QRTRACE_DEDUPE_WINDOW_HOURS": "dedupe_window_hours",
    "QRTRACE_OCCUPANCY_WINDOW_MINUTES": "occupancy_window_minutes",
    "QRTRACE_RETENTION_DAYS": "retention_days",
    "QRTRACE_PARTITIONS": "partitions",
    "QRTRACE_METRICS_PORT": "metrics_port",
    "QRTRACE_AUTH_FAILURES_PER_CLIENT": "auth_failures_per_client",
    "QRTRACE_AUTH_FAILURES_PER_TOKEN": "auth_failures_per_token",
    "QRTRACE_AUTH_FAILURE_WINDOW_SECONDS": "auth_failure_window_seconds",
}


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from environment variables over the defaults."""
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    if env.get("QRTRACE_STORE"):
        values["store"] = env["QRTRACE_STORE"]
    if env.get("QRTRACE_KEY_FILE"):
        values["key_file"] = Path(env["QRTRACE_KEY_FILE"]).expanduser()
    if env.get("QRTRACE_TOKEN_FILE"):
        values["token_file"] = Path(env["QRTRACE_TOKEN_FILE"]).expanduser()
    for name, attr in (
        ("QRTRACE_BROKER", "broker"),
        ("QRTRACE_SCHEMA_REGISTRY_URL", "schema_registry_url"),
        ("QRTRACE_TOPIC_PREFIX", "topic_prefix"),
        ("QRTRACE_WORKER_GROUP", "worker_group"),
    ):
        if env.get(name):
            values[attr] = env[name]
    if env.get("QRTRACE_METRICS_URLS"):
        values["metrics_urls"] = tuple(u.strip() for u in env["QRTRACE_METRICS_URLS"].split(",") if u.strip())
    if env.get("QRTRACE_ACTOR"):
        values["actor"] = env["QRTRACE_ACTOR"]
    if env.get("QRTRACE_LANG"):
        lang = env["QRTRACE_LANG"].lower()
        if lang not in ("vi", "en"):
            raise InputError(f"QRTRACE_LANG must be vi or en, not {lang!r}.")
        values["lang"] = lang
    for name, attr in _INT_ENV.items():
        if env.get(name):
            try:
                values[attr] = int(env[name])
            except ValueError:
                raise InputError(f"{name} must be a whole number, not {env[name]!r}.") from None
    return Settings(**values)  # type: ignore[arg-type]
