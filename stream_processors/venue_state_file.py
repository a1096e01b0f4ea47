"""The embedded runtime's processor state on disk: one SQLite row per venue, like the Faust worker's
changelog-backed table, so saving after a batch writes only the venues that batch touched.

A scanner's HTTP batch touches one venue; rewriting the whole district's state for it (the previous
single-pickle design) cost ~80 % of the request (measured: 1.6 MB pickled and unpickled per call).
Each save is one SQLite transaction, synced to disk before it returns (synchronous=FULL): a crash or
a power cut leaves the previous state or the new one, never a mix. The file is locked (flock) while
open: one process at a time may own a partition's state.
"""

from __future__ import annotations

import fcntl
import pickle
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from qrtrace.errors import InputError
from qrtrace.stream_processors.state import PartitionState, VenueState

FORMAT = 2  # bump when VenueState changes shape; a file of another format is started afresh


class StateInUse(InputError):
    """Another process holds this state file."""


class VenueStateFile:
    """Load a partition's venue states once; save the changed ones after each accepted batch."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = (path.parent / f"{path.name}.lock").open("w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise StateInUse(f"Another qrtrace process is ingesting into this store (its state {path} is locked); "
                             "stop it, or send the check-ins to that process.") from None
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER)")
        self._db.execute("CREATE TABLE IF NOT EXISTS venue_state (venue_id TEXT PRIMARY KEY, state BLOB)")

    def close(self) -> None:
        self._db.close()
        self._lock.close()  # releases the flock

    def _meta(self, key: str, default: int) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else int(row[0])

    def is_empty(self) -> bool:
        return self._db.execute("SELECT count(*) FROM venue_state").fetchone()[0] == 0

    def load(self) -> PartitionState:
        """Every saved venue (each carries its own event-time clock)."""
        state = PartitionState()
        if self._meta("format", FORMAT) != FORMAT:  # written by another layout: start afresh
            self._db.execute("DELETE FROM venue_state")
            self._db.execute("DELETE FROM meta")
            return state
        for venue_id, blob in self._db.execute("SELECT venue_id, state FROM venue_state"):
            vs: VenueState = pickle.loads(blob)  # our own file, written only by save() below
            state.venues[venue_id] = vs
        return state

    def save(self, state: PartitionState, venues: Iterable[str]) -> int:
        """Write these venues' states in one transaction; returns rows written."""
        rows = []
        for venue in venues:
            vs = state.venues.get(venue)
            if vs is not None:
                rows.append((venue, pickle.dumps(vs, protocol=pickle.HIGHEST_PROTOCOL)))
        meta = [("format", FORMAT)]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT OR REPLACE INTO venue_state (venue_id, state) VALUES (?, ?)", rows)
            self._db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", meta)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return len(rows)
