"""The outbox and the delivery statuses in the store (tables `notification_outbox`, `notification_status`).

Writing the outbox again for the same trace inserts only the ids it does not hold yet, and only those get a
`queued` status: a sent message is never queued again. The status version ranks sent over failed over
queued (see sinks/sql/schema.sql), so even a stray queued row cannot override a sent one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from qrtrace.notify.messages import Message
from qrtrace.sinks.audit import now_us
from qrtrace.sinks.clickhouse_sql import chunked, load_sql
from qrtrace.sinks.store import Store

QUEUED, SENT, FAILED = "queued", "sent", "failed"
STATUSES = (QUEUED, SENT, FAILED)
_RANK = {QUEUED: 0, FAILED: 1, SENT: 2}
NO_PHONE = "no phone number"


def status_version(status: str, updated_at_us: int) -> int:
    """rank << 52 | time: a later write of a lower rank never wins (sent is final)."""
    return (_RANK[status] << 52) | (updated_at_us & ((1 << 52) - 1))


@dataclass(frozen=True, slots=True)
class StatusRow:
    """One status write: a message's status, the failure reason (or ''), attempts, gateway kind, time."""

    message_id: str
    first_exposure_us: int
    status: str
    reason: str = ""
    attempts: int = 0
    gateway: str = ""
    updated_at_us: int = 0


def write_outbox(store: Store, messages: Sequence[Message], trace_id: str = "") -> list[str]:
    """Insert the messages the outbox does not hold yet, each with a `queued` status; returns their ids."""
    known: set[str] = set()
    for chunk in chunked([m.message_id for m in messages]):
        known |= set(store.query(load_sql("qrtrace.notify", "outbox_known"), {"ids": chunk})["message_id"])
    new = [m for m in messages if m.message_id not in known]
    if not new:
        return []
    at = now_us()
    store.insert("qrtrace.notification_outbox", {
        "message_id": [m.message_id for m in new], "trace_id": [trace_id] * len(new),
        "case_id": [m.case_id for m in new], "case_person": [m.case_person for m in new],
        "person": [m.person for m in new], "tier": [m.tier for m in new], "hop": [m.hop for m in new],
        "venue_id": [m.venue_id for m in new], "first_exposure_us": [m.first_exposure_us for m in new],
        "lang": [m.lang for m in new], "text": [m.text for m in new], "created_at_us": [at] * len(new),
    })  # fmt: skip
    write_statuses(store, [StatusRow(m.message_id, m.first_exposure_us, QUEUED, updated_at_us=at) for m in new])
    return [m.message_id for m in new]


def write_statuses(store: Store, rows: Iterable[StatusRow]) -> None:
    """One insert for a batch of status rows."""
    rows = list(rows)
    if not rows:
        return
    store.insert("qrtrace.notification_status", {
        "message_id": [r.message_id for r in rows], "first_exposure_us": [r.first_exposure_us for r in rows],
        "status": [r.status for r in rows], "reason": [r.reason for r in rows],
        "attempts": [min(r.attempts, 65_535) for r in rows], "gateway": [r.gateway for r in rows],
        "updated_at_us": [r.updated_at_us for r in rows],
        "version": [status_version(r.status, r.updated_at_us) for r in rows],
    })  # fmt: skip


def pending_ids(store: Store, statuses: Sequence[str] = (QUEUED,)) -> dict[str, int]:
    """message id -> first exposure, for the messages whose latest status is one of `statuses`."""
    rows = store.query(load_sql("qrtrace.notify", "status_pending"), {"statuses": list(statuses)})
    return dict(zip(rows["message_id"], rows["first_exposure_us"], strict=True))


def outbox_rows(store: Store, ids: Sequence[str]) -> list[Message]:
    """The outbox messages of `ids` (those it holds), in id order."""
    out: list[Message] = []
    for chunk in chunked(list(ids)):
        r = store.query(load_sql("qrtrace.notify", "outbox_rows"), {"ids": chunk})
        out += [Message(mid, cid, cp, p, tier, int(hop), v, int(at), lang, text)
                for mid, cid, cp, p, tier, hop, v, at, lang, text in zip(
                    r["message_id"], r["case_id"], r["case_person"], r["person"], r["tier"], r["hop"],
                    r["venue_id"], r["first_exposure_us"], r["lang"], r["text"], strict=True)]  # fmt: skip
    return out


def statuses(store: Store, ids: Sequence[str] | None = None) -> dict[str, StatusRow]:
    """The latest status of every message (or of `ids`)."""
    if ids is None:
        parts = [store.query(load_sql("qrtrace.notify", "status_all"))]
    else:
        parts = [store.query(load_sql("qrtrace.notify", "status_of"), {"ids": c}) for c in chunked(list(ids))]
    out: dict[str, StatusRow] = {}
    for r in parts:
        for mid, st, reason, attempts, gw, at in zip(r["message_id"], r["status"], r["reason"], r["attempts"],
                                                     r["gateway"], r["updated_at_us"], strict=True):  # fmt: skip
            out[mid] = StatusRow(mid, 0, st, reason, int(attempts), gw, int(at))
    return out


def status_counts(rows: Iterable[StatusRow]) -> dict[str, int]:
    """Messages per status (every status named, zeros included)."""
    counts = dict.fromkeys(STATUSES, 0)
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    return counts
