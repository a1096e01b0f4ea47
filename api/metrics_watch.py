"""The operations page's view of a distributed pipeline: scrape the workers' and producers' /metrics,
turn counters into rates between two scrapes, and say plainly when nothing is running or answering."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from qrtrace.api import views

NOT_RUNNING = ("Embedded mode: no stream workers or Kafka consumers run here; check-ins are processed inside "
               "`qrtrace ingest` and this server's ingest endpoint (set QRTRACE_METRICS_URLS to the workers' "
               "/metrics to watch a distributed pipeline).")  # fmt: skip


@dataclass
class _Scrape:
    at: float
    events: dict[str, float] = field(default_factory=dict)


def fetch_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2) as resp:  # operator-configured targets (QRTRACE_METRICS_URLS)
        return resp.read().decode("utf-8", "replace")


class MetricsWatcher:
    """Remembers the previous scrape of each target so that counters become events per second."""

    def __init__(self, fetch: Callable[[str], str] = fetch_text, clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._clock = clock
        self._previous: dict[str, _Scrape] = {}

    def scrape(self, urls: Sequence[str]) -> dict:
        """`not_running` with the reason when no target is configured; else each target's numbers."""
        if not urls:
            return {"state": "not_running", "reason": NOT_RUNNING}
        targets = [self._one(u) for u in urls]
        state = "running" if any(t["state"] == "up" for t in targets) else "unreachable"
        return {"state": state, "targets": targets}

    def _one(self, url: str) -> dict:
        try:
            text = self._fetch(url)
        except (OSError, ValueError) as exc:
            return {"url": url, "state": "unreachable", "reason": f"{url} did not answer ({exc})."}
        try:
            parsed = views.parse_metrics(text)
        except (ValueError, KeyError, TypeError):
            return {"url": url, "state": "unreachable", "reason": f"{url} answered, but not with Prometheus metrics."}
        now = self._clock()
        before = self._previous.get(url)
        self._previous[url] = _Scrape(now, parsed["events"])
        per_stage = views.rates(before.events, parsed["events"], now - before.at) if before else {}
        return {"url": url, "state": "up", "events_total": parsed["events"], "events_per_second": per_stage,
                "dead_letters": parsed["dead_letters"], "consumer_lag": parsed["consumer_lag"],
                "e2e_p50_s": views.histogram_quantile(parsed["e2e_buckets"], 0.5),
                "e2e_p95_s": views.histogram_quantile(parsed["e2e_buckets"], 0.95)}  # fmt: skip
