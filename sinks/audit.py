"""The audit log: every trace, export and re-identification, with who, when, which case and why.

Tamper evidence: the entries form a hash chain. Entry #n stores `prev_hash` (entry #n-1's hash; 64 zeros
for #1) and `entry_hash = sha256(prev_hash + canonical entry)`, where the canonical entry is the JSON array
of its sequence number and every stored field. `qrtrace audit verify` recomputes the chain from the store.

What the chain proves, and what it does not:
- a changed, removed or inserted entry anywhere before the last one breaks the chain at that entry
  (a changed field changes its hash; a removed one leaves a gap in the numbers and a `prev_hash` that
  points at nothing; a row written around this class has no hash or a wrong one);
- removing entries from the end leaves a shorter chain that is still whole: only an anchor kept
  elsewhere (the last entry's number and hash, printed by `verify`, checked with `--anchor`) shows that;
- the hash has no key: someone who can rewrite the table and recompute every hash after an edit makes a
  new chain that verifies; again only an anchor kept outside the store shows that;
- entries written before the chain existed (older stores) carry no hash and are reported, not covered.
Writers in one process are serialised by one lock (the next number and hash are read from the store, so
short-lived writers such as CLI commands continue the same chain); two processes writing to one ClickHouse
server at the same instant can both take the same number, which `verify` reports as a duplicate.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson

from qrtrace.sinks.clickhouse_sql import load_sql, split_statements
from qrtrace.sinks.store import Store

GENESIS = "0" * 64
CHAIN_COLUMNS = ("seq", "prev_hash", "entry_hash")
PAGE = 50_000  # entries read per statement by `verify`: memory stays bounded on a long log

# One lock for every audit writer in this process. It is reentrant and a service that serialises its own
# store access should use this same lock (see api/services/core.py), so the two can never be taken in opposite
# orders by two threads.
WRITE_LOCK = threading.RLock()


def now_us() -> int:
    return time.time_ns() // 1000


def entry_hash(prev_hash: str, seq: int, at_us: int, actor: str, action: str, case_id: str, subject: str,
               purpose: str, detail: str) -> str:  # fmt: skip
    """sha256 over the previous hash and the canonical entry (a JSON array: unambiguous field borders)."""
    canonical = orjson.dumps([seq, at_us, actor, action, case_id, subject, purpose, detail])
    return hashlib.sha256(prev_hash.encode("ascii") + canonical).hexdigest()


def add_chain_columns(store: Store) -> None:
    """Give an audit log created before the chain its three columns (existing rows keep empty hashes).
    Checked in system.columns, then plain ADD COLUMN: ClickHouse 18.16 and chDB both run that."""
    have = set(store.query(load_sql("qrtrace.sinks", "audit_columns"))["name"])
    for column, statement in zip(CHAIN_COLUMNS, split_statements(load_sql("qrtrace.sinks", "audit_chain_columns")),
                                 strict=True):  # fmt: skip
        if column not in have:
            store.execute(statement)


class AuditLog:
    """Append-only: this class only ever inserts, each entry chained to the one before."""

    def __init__(self, store: Store, actor: str) -> None:
        self.store = store
        self.actor = actor

    def as_actor(self, actor: str) -> AuditLog:
        """The same log, written in another actor's name (the API's caller, not the server's user)."""
        return AuditLog(self.store, actor)

    def record(self, action: str, case_id: str, subject: str, purpose: str, **detail: object) -> None:
        text = orjson.dumps(detail).decode()
        with WRITE_LOCK:
            tail = self.store.query(load_sql("qrtrace.sinks", "audit_tail"))
            seq, prev = (int(tail["seq"][0]) + 1, tail["entry_hash"][0]) if tail["seq"] else (1, GENESIS)
            at = now_us()
            self.store.insert(
                "qrtrace.audit_log",
                {
                    "at_us": [at],
                    "actor": [self.actor],
                    "action": [action],
                    "case_id": [case_id],
                    "subject": [subject],
                    "purpose": [purpose],
                    "detail": [text],
                    "seq": [seq],
                    "prev_hash": [prev],
                    "entry_hash": [entry_hash(prev, seq, at, self.actor, action, case_id, subject, purpose, text)],
                },
            )


# -- verification: a pure check over rows, and the shell that reads them page by page ---------------------


@dataclass(frozen=True)
class ChainBreak:
    """The first entry where the chain does not hold, and why."""

    seq: int  # 0: the entry has no number
    at_us: int
    actor: str
    action: str
    kind: str  # duplicate | missing | not_following | changed | no_hash
    other: int = 0  # missing: the first missing number; not_following: the entry it should follow


@dataclass
class ChainCheck:
    """Verification state, fed rows in sequence order (`feed`), then read."""

    entries: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    unchained: int = 0  # entries written before the chain existed
    broken: ChainBreak | None = None
    anchor_hash: str | None = None  # the hash of the anchor's entry, if it was seen

    def feed(self, rows: Iterable[Sequence], anchor_seq: int | None = None) -> None:
        """Rows of (seq, at_us, actor, action, case_id, subject, purpose, detail, prev_hash, entry_hash)."""
        for row in rows:
            if self.broken is not None:
                return
            seq, at_us, actor, action, case_id, subject, purpose, detail, prev, stored = row
            seq, at_us = int(seq), int(at_us)
            problem = None  # (kind, first missing or previous number)
            if seq == self.head_seq and self.entries:
                problem = ("duplicate", seq)
            elif seq != self.head_seq + 1:
                problem = ("missing", self.head_seq + 1)
            elif prev != self.head_hash:
                problem = ("not_following", self.head_seq)
            elif entry_hash(prev, seq, at_us, actor, action, case_id, subject, purpose, detail) != stored:
                problem = ("changed", seq)
            if problem is not None:
                self.broken = ChainBreak(seq, at_us, actor, action, *problem)
                return
            self.entries += 1
            self.head_seq, self.head_hash = seq, stored
            if seq == anchor_seq:
                self.anchor_hash = stored


def verify_store(store: Store, anchor_seq: int | None = None) -> ChainCheck:
    """Check the whole chain in the store, PAGE entries per statement."""
    check = ChainCheck()
    check.unchained = int(store.query(load_sql("qrtrace.sinks", "audit_unchained"))["n"][0])
    first = store.query(load_sql("qrtrace.sinks", "audit_page"), {"from_seq": 0, "to_seq": 1})
    low = 0
    while check.broken is None:
        page = store.query(load_sql("qrtrace.sinks", "audit_page"), {"from_seq": low, "to_seq": low + PAGE})
        if not page["seq"]:
            more = store.query(load_sql("qrtrace.sinks", "audit_page_next"), {"after_seq": low})
            if not more["seq"]:
                break
            low = int(more["seq"][0]) - 1  # a gap of more than a page: the next row is where it breaks
            continue
        check.feed(zip(*page.values(), strict=True), anchor_seq)
        low += PAGE
    if check.broken is None and check.entries:
        # A row without a hash written after the chain began did not come through AuditLog.
        first_at = int(first["at_us"][0]) if first["seq"] else 0
        stray = store.query(load_sql("qrtrace.sinks", "audit_unchained_first"), {"after_us": first_at})
        if stray["at_us"]:
            check.broken = ChainBreak(0, int(stray["at_us"][0]), stray["actor"][0], stray["action"][0], "no_hash")
            check.unchained -= 1
    return check
