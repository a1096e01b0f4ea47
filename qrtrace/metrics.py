"""Prometheus metrics shared by the producer, the HTTP endpoint and the workers (served at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

EVENTS = Counter("qrtrace_events_total", "Events through each stage", ["stage", "outcome"])
DEAD_LETTERS = Counter("qrtrace_dead_letters_total", "Dead letters by reason", ["reason"])
BATCH_SIZE = Histogram("qrtrace_batch_size", "Events per processed batch", ["stage"],
                       buckets=(1, 10, 100, 500, 1000, 2000, 5000, 10000, 20000, 50000))  # fmt: skip
SINK_SECONDS = Histogram("qrtrace_sink_insert_seconds", "Seconds per store insert", ["table"],
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))  # fmt: skip
SINK_RETRIES = Counter("qrtrace_sink_retries_total", "Store writes retried while the database was away")
E2E_SECONDS = Histogram("qrtrace_end_to_end_seconds", "From produce to stored, per event",
                        buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120))  # fmt: skip
CONSUMER_LAG = Gauge("qrtrace_consumer_lag", "Messages behind the end of the partition", ["topic", "partition"])
DELIVERY_ERRORS = Counter("qrtrace_producer_delivery_errors_total", "Messages Kafka did not accept")


def serve_metrics(port: int | None) -> None:
    """Expose /metrics on 127.0.0.1:port (no-op when port is None)."""
    if port:
        start_http_server(port, addr="127.0.0.1")

# The scanners' front door (`api/scanner_door.py`): what scanners were answered, how fast, and why not.
FRONT_REQUESTS = Counter("qrtrace_frontdoor_requests_total", "Scanner requests answered, by HTTP status", ["status"])
FRONT_SCANS = Counter("qrtrace_frontdoor_scans_total", "Check-ins in requests answered 202, by edge verdict",
                      ["verdict"])  # fmt: skip
FRONT_SECONDS = Histogram("qrtrace_frontdoor_answer_seconds", "From a scanner request read to its answer",
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
                                   30))  # fmt: skip
FRONT_UNAVAILABLE = Counter("qrtrace_frontdoor_unavailable_total", "503 answers (nothing kept), by cause", ["cause"])
FRONT_QUEUED = Gauge("qrtrace_frontdoor_queued_checkins", "Check-ins waiting for a pass of the front door",
                     multiprocess_mode="livesum")  # fmt: skip
