"""One settings object: defaults run the embedded mode; environment variables and CLI flags override.

The environment is read here and nowhere else; everything below receives a `Settings`.
"""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
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
    dedupe_window_hours: int = 48  # QRTRACE_DEDUPE_WINDOW_HOURS: how long a scan_id is remembered
    occupancy_window_minutes: int = 15  # QRTRACE_OCCUPANCY_WINDOW_MINUTES
    retention_days: int = 21  # QRTRACE_RETENTION_DAYS: whole day partitions older than this are dropped
    # Event times are checked against the receiving clock: older than the retention period or further
    # ahead than this is a dead letter (a phone's clock a few minutes fast is normal, a year is not).
    max_future_minutes: int = 5  # QRTRACE_MAX_FUTURE_MINUTES
    # The longest a visit may last: max(factor x its category's dwell, the floor). A check-out later than
    # that closes nothing and is a dead letter (a 67-year visit would drag its person into every trace).
    visit_cap_factor: int = 3  # QRTRACE_VISIT_CAP_FACTOR
    visit_cap_min_hours: int = 4  # QRTRACE_VISIT_CAP_MIN_HOURS
    now: str | None = None  # QRTRACE_NOW: ISO 8601 time the receiving clock reads (replays); default: wall clock
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
    # Which reader traces use: "index" (the trace index, memory-mapped beside the store, followed from the
    # visit feed) or "store" (two queries per hop: the reference reader).
    trace_reader: str = "index"  # QRTRACE_TRACE_READER: index | store
    trace_max_cases: int = 1000  # QRTRACE_TRACE_MAX_CASES: cases one trace run may hold (more: refused)
    trace_chunk_rows: int = 1_000_000  # QRTRACE_TRACE_CHUNK_ROWS: exposures a chunk of cases aims at (memory)
    trace_result_max_rows: int = 500_000  # QRTRACE_TRACE_RESULT_MAX_ROWS: exposures one JSON result may hold
    xlsx_max_rows: int = 2_000_000  # QRTRACE_XLSX_MAX_ROWS: rows an XLSX call list may hold (more: use CSV)
    # The scanner front door refuses a request at once (503 + Retry-After) while this many check-ins already
    # wait for a pass in its process: past it an answer would come too late to be worth waiting for.
    front_queue_checkins: int = 40_000  # QRTRACE_FRONT_QUEUE_CHECKINS
    # The public exposure-site list (no token): requests per client address per minute, then 429.
    public_requests_per_minute: int = 120  # QRTRACE_PUBLIC_REQUESTS_PER_MINUTE
    # Notifications (notify/): where messages go is a server setting, never a caller's choice (no SSRF):
    # webhook:https://..., file:PATH or kafka:TOPIC. The reference data has no health-station phone numbers:
    # messages name the commune health station and give this hotline (default: the Ministry of Health's).
    notify_gateway: str | None = None  # QRTRACE_NOTIFY_GATEWAY
    health_hotline: str = "1900 9095"  # QRTRACE_HEALTH_HOTLINE
    notify_max_attempts: int = 8  # QRTRACE_NOTIFY_MAX_ATTEMPTS: attempts per message before it is failed
    notify_max_seconds: int = 60  # QRTRACE_NOTIFY_MAX_SECONDS: back-off waiting per message, at most
    notify_workers: int = 8  # QRTRACE_NOTIFY_WORKERS: concurrent webhook connections

    def __post_init__(self) -> None:
        for name in ("max_future_minutes", "visit_cap_min_hours", "retention_days"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} cannot be negative, got {getattr(self, name)}.")
        if self.front_queue_checkins < 1:
            raise InputError(f"front_queue_checkins must be at least 1, got {self.front_queue_checkins}.")
        if self.trace_reader not in ("index", "store"):
            raise InputError(f"QRTRACE_TRACE_READER is 'index' or 'store', not {self.trace_reader!r}.")
        if self.visit_cap_factor < 1:
            raise InputError(f"visit_cap_factor must be at least 1, got {self.visit_cap_factor}.")

    def clock_us(self) -> int:
        """The receiving clock in UTC microseconds: the wall clock, or QRTRACE_NOW when replaying history."""
        if self.now is None:
            return time.time_ns() // 1_000
        return parse_clock(self.now)

    def visit_cap_us(self, dwell_minutes: int) -> int:
        """The longest visit allowed at a venue whose category has this default dwell."""
        minutes = max(self.visit_cap_factor * dwell_minutes, self.visit_cap_min_hours * 60)
        return minutes * 60_000_000

    @property
    def max_future_us(self) -> int:
        return self.max_future_minutes * 60_000_000

    @property
    def max_event_age_us(self) -> int:
        return self.retention_days * 86_400_000_000

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
    "QRTRACE_DEDUPE_WINDOW_HOURS": "dedupe_window_hours",
    "QRTRACE_OCCUPANCY_WINDOW_MINUTES": "occupancy_window_minutes",
    "QRTRACE_RETENTION_DAYS": "retention_days",
    "QRTRACE_PARTITIONS": "partitions",
    "QRTRACE_METRICS_PORT": "metrics_port",
    "QRTRACE_MAX_FUTURE_MINUTES": "max_future_minutes",
    "QRTRACE_VISIT_CAP_FACTOR": "visit_cap_factor",
    "QRTRACE_VISIT_CAP_MIN_HOURS": "visit_cap_min_hours",
    "QRTRACE_TRACE_MAX_CASES": "trace_max_cases",
    "QRTRACE_TRACE_CHUNK_ROWS": "trace_chunk_rows",
    "QRTRACE_TRACE_RESULT_MAX_ROWS": "trace_result_max_rows",
    "QRTRACE_XLSX_MAX_ROWS": "xlsx_max_rows",
    "QRTRACE_AUTH_FAILURES_PER_CLIENT": "auth_failures_per_client",
    "QRTRACE_AUTH_FAILURES_PER_TOKEN": "auth_failures_per_token",
    "QRTRACE_AUTH_FAILURE_WINDOW_SECONDS": "auth_failure_window_seconds",
    "QRTRACE_FRONT_QUEUE_CHECKINS": "front_queue_checkins",
    "QRTRACE_PUBLIC_REQUESTS_PER_MINUTE": "public_requests_per_minute",
    "QRTRACE_NOTIFY_MAX_ATTEMPTS": "notify_max_attempts",
    "QRTRACE_NOTIFY_MAX_SECONDS": "notify_max_seconds",
    "QRTRACE_NOTIFY_WORKERS": "notify_workers",
}


def parse_clock(value: str) -> int:
    """QRTRACE_NOW as UTC microseconds; an ISO 8601 time with an offset, or one sentence why not."""
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"QRTRACE_NOW must be an ISO 8601 time with an offset, not {value!r}.") from None
    if at.tzinfo is None:
        raise InputError(f"QRTRACE_NOW needs a UTC offset (e.g. +07:00): {value!r}.")
    return round(at.timestamp() * 1_000_000)


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
        ("QRTRACE_TRACE_READER", "trace_reader"),
        ("QRTRACE_NOTIFY_GATEWAY", "notify_gateway"),
        ("QRTRACE_HEALTH_HOTLINE", "health_hotline"),
    ):
        if env.get(name):
            values[attr] = env[name]
    if env.get("QRTRACE_METRICS_URLS"):
        values["metrics_urls"] = tuple(u.strip() for u in env["QRTRACE_METRICS_URLS"].split(",") if u.strip())
    if env.get("QRTRACE_NOW"):
        parse_clock(env["QRTRACE_NOW"])  # refuse a bad value at start, not at the first check-in
        values["now"] = env["QRTRACE_NOW"]
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
