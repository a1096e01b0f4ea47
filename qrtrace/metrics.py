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
