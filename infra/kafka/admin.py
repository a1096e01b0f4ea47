"""Small admin helper for the local Kafka broker (used by start.sh and create_topics.sh).

admin.py wait   --bootstrap HOST:PORT [--timeout S] [--pid PID]   exit 0 once the broker answers
admin.py topics --bootstrap HOST:PORT [--partitions N] [--prefix P]  create qrtrace's topics if missing
"""

import argparse
import os
import sys
import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic


def topic_plan(partitions: int) -> dict[str, int]:
    # Only the topics something reads or writes: check-ins keyed by venue and processed in parallel,
    # identities keyed by person, dead letters. (Visits and cases go to ClickHouse directly; a topic nobody
    # consumes would only be a place where data seems to be.)
    return {"checkins": partitions, "checkins.dlq": 1, "identities": partitions}


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 0, "socket.connection.setup.timeout.ms": 2000})


def alive(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def wait(bootstrap: str, timeout: float, pid: int | None) -> int:
    client, deadline = admin(bootstrap), time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            print(f"admin.py: broker process {pid} exited during startup", file=sys.stderr)
            return 1
        try:
            if client.list_topics(timeout=2).brokers:
                return 0
        except KafkaException:
            pass
        time.sleep(0.5)
    print(f"admin.py: broker at {bootstrap} did not answer within {timeout:g} s", file=sys.stderr)
    return 1


def topics(bootstrap: str, partitions: int, prefix: str = "") -> int:
    client = admin(bootstrap)
    plan = {prefix + t: n for t, n in topic_plan(partitions).items()}
    existing = client.list_topics(timeout=10).topics
    new = [NewTopic(t, num_partitions=n, replication_factor=1) for t, n in plan.items() if t not in existing]
    futures = client.create_topics(new, operation_timeout=30, request_timeout=30) if new else {}
    for fut in futures.values():
        try:
            fut.result()
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    meta = client.list_topics(timeout=10).topics
    for t, n in plan.items():
        have = len(meta[t].partitions) if t in meta else 0
        note = "" if have == n else f" (wanted {n}; existing topic left as is)"
        print(f"{t}\t{have}{note}")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["wait", "topics"])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--pid", type=int)
    p.add_argument("--partitions", type=int, default=int(os.environ.get("QRTRACE_PARTITIONS", "4")))
    p.add_argument("--prefix", default=os.environ.get("QRTRACE_TOPIC_PREFIX", ""), help="namespace for topic names")
    a = p.parse_args()
    if a.command == "wait":
        return wait(a.bootstrap, a.timeout, a.pid)
    return topics(a.bootstrap, a.partitions, a.prefix)


if __name__ == "__main__":
    sys.exit(main())
