"""Distributed tier: a real Kafka broker (KRaft) and a real ClickHouse server, started once per session
by the project's own infra scripts, stopped by the pids they recorded. If they cannot start, the tier
fails (it is never skipped)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO, qrtrace_bin
from tests.distributed.helpers import SIM_CLOCK

INFRA = REPO / "infra"


def script(*args: object, timeout: float = 600) -> str:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "QRTRACE_PYTHON": sys.executable})  # fmt: skip
    if proc.returncode != 0:
        pytest.fail(f"{args[0]} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.stdout.strip()


@dataclass
class Servers:
    state: Path
    broker: str
    clickhouse_dir: Path

    @property
    def clickhouse_port(self) -> int:
        return int((self.clickhouse_dir / "native_port").read_text())

    @property
    def store_url(self) -> str:
        return f"clickhouse://127.0.0.1:{self.clickhouse_port}/qrtrace"

    def fresh_clickhouse(self, state: Path) -> None:
        """A new, empty server for one test (0.5 s). Emptying tables instead is not enough on 18.16:
        parts removed by TRUNCATE come back if the server restarts within old_parts_lifetime."""
        script(INFRA / "clickhouse" / "stop.sh", self.clickhouse_dir)
        self.clickhouse_dir = state
        script(INFRA / "clickhouse" / "start.sh", state)

    def restart_broker(self, kill: bool = False, down_s: float = 0.0) -> None:
        self.stop_broker(kill)
        time.sleep(down_s)
        self.start_broker()

    def stop_broker(self, kill: bool = False) -> None:
        script(INFRA / "kafka" / "stop.sh", self.state / "kafka", *(["--kill"] if kill else []))

    def start_broker(self) -> None:
        script(INFRA / "kafka" / "start.sh", self.state / "kafka")

    def stop_clickhouse(self) -> None:
        script(INFRA / "clickhouse" / "stop.sh", self.clickhouse_dir)

    def start_clickhouse(self) -> None:
        script(INFRA / "clickhouse" / "start.sh", self.clickhouse_dir)


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    state = tmp_path_factory.mktemp("servers")
    script(INFRA / "clickhouse" / "install.sh")
    broker = script(INFRA / "kafka" / "start.sh", state / "kafka").splitlines()[-1]
    servers = Servers(state, broker, state / "clickhouse")
    try:
        script(INFRA / "clickhouse" / "start.sh", servers.clickhouse_dir)
        yield servers
    finally:
        subprocess.run([str(INFRA / "kafka" / "stop.sh"), str(state / "kafka")], timeout=120)
        subprocess.run([str(INFRA / "clickhouse" / "stop.sh"), str(servers.clickhouse_dir)], timeout=120)


@dataclass
class Pipeline:
    """One isolated pipeline on the shared servers: its own topic prefix and consumer group."""

    servers: Servers
    keys: Path
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}.")
    workers: list[subprocess.Popen] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "QRTRACE_BROKER": self.servers.broker, "QRTRACE_STORE": self.servers.store_url,
                "QRTRACE_TOPIC_PREFIX": self.prefix, "QRTRACE_WORKER_GROUP": f"{self.prefix}workers",
                "QRTRACE_KEY_FILE": str(self.keys), "QRTRACE_PARTITIONS": "4", "QRTRACE_NOW": SIM_CLOCK}  # fmt: skip

    def create_topics(self) -> None:
        script(sys.executable, INFRA / "kafka" / "admin.py", "topics", "--bootstrap", self.servers.broker,
               "--partitions", "4", "--prefix", self.prefix)  # fmt: skip

    def cli(self, *args: str, timeout: float = 300) -> str:
        proc = subprocess.run([qrtrace_bin(), *args], capture_output=True, text=True, env=self.env, timeout=timeout)
        assert proc.returncode == 0, f"qrtrace {args}: {proc.stderr[-2000:]}"
        return proc.stdout

    def start_worker(self, log: Path) -> subprocess.Popen:
        fh = log.open("ab")
        proc = subprocess.Popen([qrtrace_bin(), "worker"], env=self.env, stdout=fh, stderr=subprocess.STDOUT)
        self.workers.append(proc)
        return proc

    def stop_workers(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
        self.workers.clear()


@pytest.fixture
def pipeline(servers: Servers, tmp_path: Path) -> Iterator[Pipeline]:
    servers.fresh_clickhouse(tmp_path / "clickhouse")  # each test starts from an empty database
    p = Pipeline(servers, tmp_path / "keys.json")
    p.create_topics()
    try:
        yield p
    finally:
        p.stop_workers()
