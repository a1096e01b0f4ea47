"""The delivery journal: a local append-only file of outcomes, written right after each gateway answer.

Why a journal beside the store: the store takes status rows in batches (one insert per few hundred
messages), so a sender killed between a provider's 2xx and the next batch write would, on restart, see those
messages still `queued` and send them again. The journal closes that window: one line per outcome, written
with a single `write(2)` on an O_APPEND descriptor right after the answer, so it survives the process being
killed (the kernel holds it; `fsync` runs at every batch boundary, for power loss). At start the sender
replays the journal into the store and never sends a message the journal holds as sent; once the store has
taken the replay, the journal is emptied (a sent status in the store is final), so it stays one run long.

The file is locked (flock) while a sender runs: a second sender on the same store refuses to start, so two
processes never send the same queue at once. A line cut short by a kill mid-write is dropped on open.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import orjson

from qrtrace.errors import InputError
from qrtrace.notify.outbox import StatusRow


class Journal:
    """Append-only JSON lines of StatusRow fields; opened exclusively (one sender per store at a time)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise InputError(f"Another sender is running on this store (its journal {path} is locked); wait for "
                             "it to finish.") from None  # fmt: skip
        self._drop_torn_tail()

    def _drop_torn_tail(self) -> None:
        """A kill in the middle of a write leaves a line without its newline: that outcome was not recorded."""
        size = os.fstat(self._fd).st_size
        if not size:
            return
        with open(self.path, "rb") as fh:
            data = fh.read()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            os.ftruncate(self._fd, end)

    def entries(self) -> Iterator[StatusRow]:
        """Every outcome recorded, oldest first."""
        with open(self.path, "rb") as fh:
            for line in fh:
                if line.endswith(b"\n"):
                    d = orjson.loads(line)
                    yield StatusRow(d["id"], d["fe"], d["s"], d["r"], d["a"], d["g"], d["t"])

    def record(self, row: StatusRow) -> None:
        """One outcome, one write(2): on disk (in the kernel's cache) before the next message is sent."""
        line = orjson.dumps({"id": row.message_id, "fe": row.first_exposure_us, "s": row.status, "r": row.reason,
                             "a": row.attempts, "g": row.gateway, "t": row.updated_at_us}) + b"\n"  # fmt: skip
        os.write(self._fd, line)

    def clear(self) -> None:
        """Empty the journal: only once the store shows every outcome it holds (after a replay)."""
        os.ftruncate(self._fd, 0)
        os.fsync(self._fd)

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)  # releases the lock
            self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
