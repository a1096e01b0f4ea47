"""Shell commands for the distributed tier: bring servers up and down, produce, run a worker."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

from qrtrace.errors import InputError, QrtraceError
from qrtrace.settings import Settings

INFRA = Path(__file__).resolve().parents[1] / "infra"


def _script(*args: str | Path) -> str:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise QrtraceError(f"{Path(str(args[0])).name} failed: {last}")
    return proc.stdout.strip()


def servers_up(state_dir: Path, partitions: int = 4) -> tuple[str, str]:
    """Kafka (KRaft) and ClickHouse on 127.0.0.1 under `state_dir`; returns (broker, store URL)."""
    if not INFRA.exists():
        raise QrtraceError(f"{INFRA} is missing; `qrtrace up` runs from a qrtrace checkout.")
    state_dir = state_dir.resolve()
    broker = _script(INFRA / "kafka" / "start.sh", state_dir / "kafka").splitlines()[-1]
    _script(INFRA / "kafka" / "create_topics.sh", state_dir / "kafka", str(partitions))
    _script(INFRA / "clickhouse" / "install.sh")
    _script(INFRA / "clickhouse" / "start.sh", state_dir / "clickhouse")
    port = (state_dir / "clickhouse" / "native_port").read_text().strip()
    return broker, f"clickhouse://127.0.0.1:{port}/qrtrace"


def servers_down(state_dir: Path) -> None:
    state_dir = state_dir.resolve()
    for name in ("kafka", "clickhouse"):
        if (state_dir / name).exists():
            _script(INFRA / name / "stop.sh", state_dir / name)


def simulated_lines(
    settings: Settings, population: int, days: int, seed: int, start: datetime | None = None
) -> Iterator[list[bytes]]:
    """Register a simulated district's venues in the store, then yield its check-ins (from `start`, a local
    midnight; default: `days` days before today)."""
    from qrtrace.producers.simulator import SimulationConfig, build_district, checkin_batches
    from qrtrace.sinks.audit import now_us
    from qrtrace.sinks.stores import open_store
    from qrtrace.sinks.writer import StoreWriter

    district = build_district(SimulationConfig(seed=seed, start=start, days=days, population=population))
    store = open_store(settings)
    try:
        StoreWriter(store).venues(district.venues, now_us())
    finally:
        store.close()
    yield from checkin_batches(district, settings.batch_size)


def produce_lines(settings: Settings, batches: Iterable[Sequence[bytes]]) -> dict[str, int]:
    """Edge + Kafka producer: validate, pseudonymise, send; waits until Kafka acknowledged everything."""
    from qrtrace.identity import Pseudonymiser, Vault, load_or_create_keyring
    from qrtrace.producers.edge import Edge, receiving_edge
    from qrtrace.producers.kafka_producer import CheckinProducer
    from qrtrace.schemas.confluent_registry import registry_for
    from qrtrace.sinks.audit import now_us
    from qrtrace.sinks.stores import open_store

    if not settings.broker:
        raise InputError("No broker given: pass --broker HOST:PORT or set QRTRACE_BROKER.")
    from qrtrace.metrics import serve_metrics

    serve_metrics(settings.metrics_port)
    keys = load_or_create_keyring(settings.key_file)
    producer = CheckinProducer(settings.broker, registry_for(settings.schema_registry_url), settings.topic_prefix)
    edge: Edge | None = None
    counts = {"sent": 0, "dead_lettered": 0, "identities": 0}
    for lines in batches:
        if edge is None:  # venues are read after the first batch is ready: --simulate registers them first
            store = open_store(settings)
            try:
                from qrtrace.queries.reference import venue_zones

                venues = venue_zones(store)  # venue -> its zones: the edge checks a check-in's zone too
            finally:
                store.close()
            if not venues:
                raise InputError("No venues are registered in the store; import them first (qrtrace venues import).")
            edge = receiving_edge(settings, Pseudonymiser(keys.pseudonym_key), Vault(keys.vault_key), venues)
        admitted = edge.admit(lines)
        producer.send(admitted, source="produce", received_at_us=now_us())
        counts["sent"] += len(admitted.checkins)
        counts["dead_lettered"] += len(admitted.dead_letters)
        counts["identities"] += len(admitted.identities)
    left = producer.flush(120)
    if left:
        raise QrtraceError(f"{left} messages were still waiting for Kafka after 120 s; send the input again.")
    return counts


def run_worker(settings: Settings) -> None:
    """Run one Faust worker in this process until interrupted."""
    from qrtrace.metrics import serve_metrics
    from qrtrace.stream_processors.faust_worker import BoundedWorker, build_app

    if not settings.broker:
        raise InputError("No broker given: pass --broker HOST:PORT or set QRTRACE_BROKER.")
    if settings.is_embedded_store:
        raise InputError("A worker writes to a ClickHouse server: pass --store clickhouse://HOST:PORT/qrtrace.")
    serve_metrics(settings.metrics_port)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="qrtrace-worker-") as datadir:
        app = build_app(settings, datadir)
        BoundedWorker(app, stop=app.qrtrace_stop, loglevel="warning", quiet=True).execute_from_commandline()
