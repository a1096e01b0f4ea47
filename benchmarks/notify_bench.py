"""Notification benchmark: messages sent per second to a local webhook receiver, for a day's cohort.

    .venv/bin/python benchmarks/notify_bench.py                      # 1M visits, 15,000 cases, F1
    .venv/bin/python benchmarks/notify_bench.py --cases 1000 --profile   # where the time goes

1. A fresh embedded store of `--rows` synthetic visits (benchmarks/national_data.py, the shape trace_bench.py
   uses), and the trace index built from it.
2. `--cases` random cases traced in one run (`EmbeddedRuntime.trace_pseudonymous`, depth `--depth`): the
   day's cohort. Every contact is given a phone number in the sealed contact directory.
3. Measured, ours: the same steps `notify_cohort` takes, each timed: compose the messages, write the outbox
   (with its queued statuses), then `send_pending` to the receiver: per batch of 1,000 the vault opened and
   audited, the POSTs over `--workers` kept-alive connections, one journal write per answer, one status
   insert per batch.
4. Checked at the receiver (tests/notify_receiver.py, a bounded threaded HTTP server in its own process):
   every message accepted exactly once, no repeat, no other.
5. Baseline in the same run, on the same messages (the first ones, in the same order, within
   `--baseline-seconds`): one POST per message, a new connection each, sequentially, with the phone numbers
   handed to it for free (no vault, no journal, no store). Checked at a fresh receiver the same way.
Writes benchmarks/results/notify.json (or notify-profile.txt with --profile: cProfile of every thread).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import http.client
import io
import json
import platform
import pstats
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
from national_data import NationalShape, load_synthetic
from trace_bench import GRACE_US, draw_cases

from qrtrace.embedded import EmbeddedRuntime
from qrtrace.notify.cohort import compose
from qrtrace.notify.gateways import Outgoing as Out
from qrtrace.notify.gateways import WebhookGateway, open_gateway, payload
from qrtrace.notify.messages import notices_from_results
from qrtrace.notify.outbox import status_counts, statuses, write_outbox
from qrtrace.notify.sender import send_pending
from qrtrace.producers.edge import CONTACT_CONTEXT
from qrtrace.queries.trace import TraceRules, trace_batch
from qrtrace.queries.trace_index import IndexHopReader
from qrtrace.settings import Settings
from qrtrace.sinks.audit import AuditLog, now_us
from qrtrace.stream_processors.config import longest_allowed_visit_us

RESULTS = Path(__file__).resolve().parent / "results"
RECEIVER = Path(__file__).resolve().parents[1] / "tests" / "notify_receiver.py"


def phone_of(person: str) -> str:
    return "09" + str(int(hashlib.blake2b(person.encode(), digest_size=8).hexdigest(), 16) % 10**8).zfill(8)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """tests/notify_receiver.py in its own process, stopped by its pid."""

    def __init__(self, record: Path, threads: int = 64, delay_ms: float = 0) -> None:
        self.port, self.record = free_port(), record
        self.proc = subprocess.Popen([sys.executable, str(RECEIVER), "--port", str(self.port), "--record",
                                      str(record), "--threads", str(threads), "--max-seconds", "3600",
                                      "--delay-ms", str(delay_ms)], stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sms"

    def check(self, expected: set[str]) -> dict:
        rows = [orjson.loads(line) for line in self.record.read_bytes().splitlines()]
        keys = [r["key"] for r in rows]
        return {"accepted": len(rows), "unique": len(set(keys)), "repeats": sum(r["repeat"] for r in rows),
                "exactly_once": len(keys) == len(set(keys)) == len(expected) and set(keys) == expected}  # fmt: skip

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)


def naive_send(url: str, items: list[Out], budget_s: float) -> tuple[int, float]:
    """One POST per message, a new connection each, one after the other, until done or out of time."""
    host, port = "127.0.0.1", int(url.split(":")[2].split("/")[0])
    sent, started = 0, time.perf_counter()
    for item in items:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        conn.request(
            "POST",
            "/sms",
            body=payload(item),
            headers={"Content-Type": "application/json", "Idempotency-Key": item.message.message_id},
        )
        response = conn.getresponse()
        response.read()
        conn.close()
        assert response.status == 200, response.status
        sent += 1
        if time.perf_counter() - started > budget_s:
            break
    return sent, time.perf_counter() - started


class ProfiledWebhook(WebhookGateway):
    """The webhook gateway with a cProfile per worker thread (cProfile sees only the thread it runs in)."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.local = threading.local()
        self.profiles: list[cProfile.Profile] = []

    def _profile(self) -> cProfile.Profile:
        prof = getattr(self.local, "prof", None)
        if prof is None:
            prof = self.local.prof = cProfile.Profile()
            self.profiles.append(prof)
        return prof

    def send_one(self, box, item):  # type: ignore[no-untyped-def]
        prof = self._profile()
        prof.enable()
        try:
            return super().send_one(box, item)
        finally:
            prof.disable()

    def deliver(self, items, on_outcome):  # type: ignore[no-untyped-def]
        def profiled(outcome):  # type: ignore[no-untyped-def]
            prof = self._profile()
            prof.enable()
            try:
                on_outcome(outcome)
            finally:
                prof.disable()

        super().deliver(items, profiled)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--cases", type=int, default=15_000)
    ap.add_argument("--depth", type=int, default=1)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--baseline-seconds", type=float, default=60.0)
    ap.add_argument(
        "--latency-ms",
        type=float,
        default=20.0,
        help="second phase: the receiver answers after this long, as a remote provider does (0: skip)",
    )
    ap.add_argument("--latency-messages", type=int, default=10_000)
    ap.add_argument("--latency-baseline-seconds", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=2021)
    ap.add_argument("--profile", action="store_true", help="cProfile the send (every thread); no results JSON")
    ap.add_argument("--out", type=Path, default=RESULTS / "notify.json")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="qrtrace-notify-bench-"))
    try:
        return run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> int:
    settings = Settings(store=str(work / "store"), key_file=work / "keys.json", actor="bench",
                        trace_max_cases=max(args.cases, 1000), notify_workers=args.workers)  # fmt: skip
    out: dict = {"rows": args.rows, "cases": args.cases, "depth": args.depth, "workers": args.workers}
    with EmbeddedRuntime(settings) as rt:
        t = time.perf_counter()
        load_synthetic(rt.store, NationalShape(rows=args.rows, seed=args.seed))
        rt.store.execute("OPTIMIZE TABLE qrtrace.visits_by_venue FINAL")
        rt.store.execute("OPTIMIZE TABLE qrtrace.visits_by_person FINAL")
        span = rt.store.query("SELECT min(start_us) AS first, max(end_us) AS last FROM qrtrace.visits_by_venue")
        out["load_s"] = round(time.perf_counter() - t, 1)
        cases = draw_cases(rt.store, args.cases, args.seed, int(span["first"][0]), int(span["last"][0]))
        rules = TraceRules(depth=args.depth, grace_us=GRACE_US, until_us=int(span["last"][0]))
        t = time.perf_counter()
        # The trace core on the store's index, as trace_bench.py runs it (the CLI would also write one audit
        # entry per case: 15,000 chained entries, minutes that are not the notifications' time).
        reader = IndexHopReader(rt.trace_index().current(), longest_allowed_visit_us(settings))
        results = trace_batch(reader, cases, rules).named().results()
        out["trace_s"] = round(time.perf_counter() - t, 1)
        persons = sorted({c.person for r in results for c in r.contacts})
        out["contacts"] = sum(len(r.contacts) for r in results)
        out["people"] = len(persons)
        phones = {p: phone_of(p) for p in persons}
        rt.writer.contacts(persons, [rt.vault.seal(phones[p], CONTACT_CONTEXT) for p in persons], now_us(),
                           "directory")  # fmt: skip
        print(f"{args.rows:,} visits loaded in {out['load_s']} s; {args.cases:,} cases traced (depth {args.depth}) "
              f"in {out['trace_s']} s: {out['contacts']:,} contacts, {len(persons):,} people")  # fmt: skip

        t = time.perf_counter()
        messages = compose(rt.store, settings, notices_from_results(results), "all", None)
        out["compose_s"] = round(time.perf_counter() - t, 2)
        del results
        t = time.perf_counter()
        write_outbox(rt.store, messages)
        out["outbox_s"] = round(time.perf_counter() - t, 2)
        out["messages"] = len(messages)
        ids = [m.message_id for m in messages]
        receiver = Receiver(work / "ours.jsonl")
        spec = f"webhook:{receiver.url}"
        gateway = (ProfiledWebhook(receiver.url, open_gateway(spec, settings).backoff, args.workers)  # type: ignore[attr-defined]
                   if args.profile else open_gateway(spec, settings))  # fmt: skip
        main_prof = cProfile.Profile() if args.profile else None
        t = time.perf_counter()
        if main_prof:
            main_prof.enable()
        report = send_pending(rt.store, rt.vault, AuditLog(rt.store, "bench"), settings, gateway, "benchmark",
                              only=ids)  # fmt: skip
        if main_prof:
            main_prof.disable()
        send_s = time.perf_counter() - t
        gateway.close()
        check = receiver.check(set(ids))
        receiver.stop()
        counts = status_counts(statuses(rt.store, ids).values())
        out.update(send_s=round(send_s, 2), sent=report.sent, failed=report.failed, statuses=counts,
                   receiver=check, per_s=round(len(ids) / send_s))  # fmt: skip
        e2e = out["compose_s"] + out["outbox_s"] + send_s
        out["end_to_end_per_s"] = round(len(ids) / e2e)
        print(
            f"ours: {len(ids):,} messages: compose {out['compose_s']} s, outbox {out['outbox_s']} s, send "
            f"{send_s:.1f} s = {out['per_s']:,}/s (end to end {out['end_to_end_per_s']:,}/s); receiver: {check}"
        )
        if args.profile:
            buf = io.StringIO()
            for title, profs in (
                ("main thread (store, vault, audit, journal sync)", [main_prof]),
                ("worker threads (HTTP, journal writes)", gateway.profiles),
            ):  # type: ignore[attr-defined]
                stats = pstats.Stats(*profs, stream=buf)  # type: ignore[arg-type]
                buf.write(f"\n==== {title}: by own time ====\n")
                stats.sort_stats("tottime").print_stats(18)
            path = RESULTS / "notify-profile.txt"
            path.write_text(f"notify_bench --cases {args.cases} --rows {args.rows} --workers {args.workers}: "
                            f"{len(ids):,} messages in {send_s:.1f} s\n" + buf.getvalue())  # fmt: skip
            print(f"profile: {path}")
            return 0 if check["exactly_once"] else 1

        naive_receiver = Receiver(work / "naive.jsonl")
        items = [Out(m, phones[m.person]) for m in sorted(messages, key=lambda m: m.message_id)]
        sent, naive_s = naive_send(naive_receiver.url, items, args.baseline_seconds)
        naive_check = naive_receiver.check({i.message.message_id for i in items[:sent]})
        naive_receiver.stop()
        out["naive"] = {"messages": sent, "seconds": round(naive_s, 2), "per_s": round(sent / naive_s),
                        "receiver": naive_check}  # fmt: skip
        out["ratio"] = round(out["per_s"] / out["naive"]["per_s"], 1)
        out["end_to_end_ratio"] = round(out["end_to_end_per_s"] / out["naive"]["per_s"], 1)
        print(f"naive: {sent:,} messages in {naive_s:.1f} s = {out['naive']['per_s']:,}/s; ratio {out['ratio']}x "
              f"(end to end {out['end_to_end_ratio']}x); receiver: {naive_check}")  # fmt: skip
        if args.latency_ms:
            out["latency"] = latency_phase(rt, settings, messages[: args.latency_messages], items, args, work)
            ok_latency = (
                out["latency"]["receiver"]["exactly_once"] and out["latency"]["naive"]["receiver"]["exactly_once"]
            )
        else:
            ok_latency = True
    out["machine"] = {"cpus": _cpus(), "python": platform.python_version()}
    out["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"results: {args.out}")
    ok = check["exactly_once"] and naive_check["exactly_once"] and counts["sent"] == len(ids) - report.failed
    ok = ok and ok_latency
    return 0 if ok and not report.failed else 1


def latency_phase(rt, settings: Settings, subset: list, items: list[Out], args: argparse.Namespace, work: Path) -> dict:  # type: ignore[no-untyped-def]
    """The same two senders when the provider takes `--latency-ms` to answer, on the first messages. The
    first phase sent every message: the benchmark empties the outbox, the statuses and the journal (a reset
    only a benchmark does) and queues the subset again."""
    from qrtrace.notify.sender import journal_path

    rt.store.execute("TRUNCATE TABLE qrtrace.notification_outbox")
    rt.store.execute("TRUNCATE TABLE qrtrace.notification_status")
    journal_path(settings).unlink(missing_ok=True)
    write_outbox(rt.store, subset)
    ids = [m.message_id for m in subset]
    receiver = Receiver(work / "ours-latency.jsonl", delay_ms=args.latency_ms)
    gateway = open_gateway(f"webhook:{receiver.url}", settings)
    t = time.perf_counter()
    report = send_pending(rt.store, rt.vault, AuditLog(rt.store, "bench"), settings, gateway, "benchmark", only=ids)
    send_s = time.perf_counter() - t
    gateway.close()
    check = receiver.check(set(ids))
    receiver.stop()
    naive_receiver = Receiver(work / "naive-latency.jsonl", delay_ms=args.latency_ms)
    sent, naive_s = naive_send(naive_receiver.url, items, args.latency_baseline_seconds)
    naive_check = naive_receiver.check({i.message.message_id for i in items[:sent]})
    naive_receiver.stop()
    out = {"latency_ms": args.latency_ms, "messages": len(ids), "send_s": round(send_s, 2),
           "per_s": round(len(ids) / send_s), "sent": report.sent, "receiver": check,
           "naive": {"messages": sent, "seconds": round(naive_s, 2), "per_s": round(sent / naive_s),
                     "receiver": naive_check}}  # fmt: skip
    out["ratio"] = round(out["per_s"] / out["naive"]["per_s"], 1)
    print(f"at {args.latency_ms:g} ms provider latency: ours {out['per_s']:,}/s ({len(ids):,} messages), naive "
          f"{out['naive']['per_s']:,}/s ({sent:,}); ratio {out['ratio']}x")  # fmt: skip
    return out


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    sys.exit(main())
