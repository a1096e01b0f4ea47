"""The sender: queued messages from the outbox to a gateway, exactly once per message id.

The argument, step by step (docs/design.md has the long form):
1. The journal is locked: one sender per store at a time.
2. At start the journal is replayed into the store (statuses the last run learnt but had not written yet).
3. A message is sent only if its store status is queued (or failed, when retrying) AND the journal does not
   hold it as sent.
4. Right after a gateway's answer the outcome is one write(2) to the journal, then buffered for the store
   (one insert per batch).
So a kill at any point re-sends at most the messages whose answer had arrived but whose journal line had
not been written: that window is the few microseconds between reading a 2xx and the write(2) that follows
it. For it the webhook carries `Idempotency-Key: <message_id>` (a provider that honours it accepts the
re-POST as the same message), the file gateway checks its own file, and on Kafka the key is the message id
(a consumer can drop a repeat).

Phone numbers are opened from the sealed contact details once per batch, in memory only, and every opening
is written to the audit log (action `notify`, the purpose, how many numbers were opened).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from qrtrace.identity import Vault, current_contact
from qrtrace.notify.gateways import Gateway, Outcome, Outgoing
from qrtrace.notify.journal import Journal
from qrtrace.notify.outbox import (
    FAILED,
    NO_PHONE,
    QUEUED,
    SENT,
    StatusRow,
    outbox_rows,
    pending_ids,
    statuses,
    write_statuses,
)
from qrtrace.queries.reidentify import open_contacts, open_identifiers
from qrtrace.settings import Settings
from qrtrace.sinks.audit import AuditLog, now_us
from qrtrace.sinks.store import Store

BATCH = 2000  # messages per vault opening, audit entry and status insert


@dataclass
class SendReport:
    """What one run of the sender did (not the store's totals: see outbox.status_counts)."""

    considered: int = 0
    sent: int = 0
    failed: int = 0
    skipped_journaled: int = 0  # queued in the store but already sent by the journal: not sent again
    replayed: int = 0  # journal outcomes written into the store at start
    reasons: dict[str, int] = field(default_factory=dict)


def journal_path(settings: Settings):  # type: ignore[no-untyped-def]
    """The store's delivery journal (local, beside the processor state)."""
    return settings.state_dir / "notify" / "journal.jsonl"


def replay(journal: Journal, store: Store) -> tuple[int, set[str]]:
    """Write the journal's outcomes the store does not show yet; returns how many, and the ids sent."""
    latest: dict[str, StatusRow] = {}
    for row in journal.entries():
        old = latest.get(row.message_id)
        if old is None or old.status != SENT:  # sent is final, as in the store
            latest[row.message_id] = row
    sent = {m for m, r in latest.items() if r.status == SENT}
    if not latest:
        return 0, sent
    stored = statuses(store, list(latest))
    missing = [r for m, r in latest.items() if m in stored and (stored[m].status, stored[m].updated_at_us) !=
               (r.status, r.updated_at_us) and stored[m].status != SENT]  # fmt: skip
    write_statuses(store, missing)
    return len(missing), sent


def open_phones(store: Store, vault: Vault, persons: Sequence[str]) -> dict[str, str]:
    """person -> the number to call (the latest contact given, else the identifier if it is a phone); people
    without one are absent. Not audited: `send_pending` is."""
    identifiers = open_identifiers(store, vault, persons)
    timelines = open_contacts(store, vault, persons)
    out = {}
    for p in persons:
        phone = current_contact(identifiers.get(p, ""), timelines.get(p, []))
        if phone:
            out[p] = phone
    return out


def send_pending(
    store: Store,
    vault: Vault,
    audit: AuditLog,
    settings: Settings,
    gateway: Gateway,
    purpose: str,
    only: Sequence[str] | None = None,
    retry_failed: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> SendReport:
    """Send the queued messages (all, or those of `only`) through `gateway`, a batch at a time."""
    report = SendReport()
    with Journal(journal_path(settings)) as journal:
        report.replayed, journaled = replay(journal, store)
        journal.clear()  # the store now shows every outcome the journal held
        wanted = pending_ids(store, (QUEUED, FAILED) if retry_failed else (QUEUED,))
        if only is not None:
            keep = set(only)
            wanted = {m: at for m, at in wanted.items() if m in keep}
        report.skipped_journaled = sum(1 for m in wanted if m in journaled)
        ids = sorted(m for m in wanted if m not in journaled)
        report.considered = len(ids)
        done = 0
        lock = threading.Lock()
        in_flight: tuple[Callable[[], None], list[StatusRow]] | None = None

        def settle(batch: tuple[Callable[[], None], list[StatusRow]]) -> None:
            wait, buffered = batch
            try:
                wait()
            finally:
                journal.sync()
                with lock:
                    rows = list(buffered)
                write_statuses(store, rows)

        try:
            for start in range(0, len(ids), BATCH):
                # Prepared while the previous batch is in flight: the store and the vault are read by this
                # thread only, the workers only journal and buffer.
                messages = outbox_rows(store, ids[start : start + BATCH])
                buffered: list[StatusRow] = []
                first = {m.message_id: m.first_exposure_us for m in messages}

                def outcome(o: Outcome, buffered: list[StatusRow] = buffered, first: dict[str, int] = first) -> None:
                    nonlocal done
                    row = StatusRow(o.message_id, first[o.message_id], SENT if o.delivered else FAILED, o.reason,
                                    o.attempts, gateway.kind, now_us())  # fmt: skip
                    with lock:
                        journal.record(row)  # first: a kill after this line never sends the message again
                        buffered.append(row)
                        if o.delivered:
                            report.sent += 1
                        else:
                            report.failed += 1
                            key = o.reason.split(" (after")[0]
                            report.reasons[key] = report.reasons.get(key, 0) + 1
                        done += 1
                        n = done
                    if on_progress:
                        on_progress(n, len(ids))

                phones = open_phones(store, vault, sorted({m.person for m in messages}))
                cases = sorted({m.case_id for m in messages})
                audit.record("notify", ",".join(cases), "", purpose, count=len(messages), opened=len(phones),
                             gateway=gateway.kind)  # fmt: skip
                items = []
                for m in messages:
                    if m.person in phones:
                        items.append(Outgoing(m, phones[m.person]))
                    else:
                        outcome(Outcome(m.message_id, False, NO_PHONE, 0))
                previous, in_flight = in_flight, (gateway.start(items, outcome), buffered)
                if previous is not None:
                    settle(previous)  # its statuses written while this batch is sent
        finally:
            if in_flight is not None:
                settle(in_flight)
    return report
