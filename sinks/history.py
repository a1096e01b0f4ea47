"""The processor's read of what the store holds for (person, venue) keys it no longer remembers: a check-in
older than the dedupe window re-pairs its key from the stored check-ins (`CheckinProcessor`'s history)."""

from __future__ import annotations

from qrtrace.sinks.clickhouse_sql import load_sql
from qrtrace.sinks.store import Store
from qrtrace.stream_processors.pipeline import StoredHistory
from qrtrace.stream_processors.state import Scan


def stored_history(store: Store, wanted: list[tuple[str, str, int]]) -> StoredHistory:
    """Stored check-ins of each (venue, person) from its `since` on, and the highest version each key wrote.
    Two statements for the whole batch, whatever the number of keys."""
    keys = sorted({(v, p) for v, p, _ in wanted})
    venues = sorted({v for v, _ in keys})
    persons = sorted({p for _, p in keys})
    since = min(s for _, _, s in wanted)
    rows = store.query_columns(load_sql("qrtrace.sinks", "stored_history_checkins"),
                               {"venues": venues, "since": since, "keys": keys})  # fmt: skip
    events: dict[tuple[str, str], list[Scan]] = {}
    for venue, person, scan, t, direction, zone in zip(
        rows["venue_id"].tolist(), rows["person"].tolist(), rows["scan_id"].tolist(),
        rows["event_time_us"].tolist(), rows["direction"].tolist(), rows["zone"].tolist(), strict=True,
    ):  # fmt: skip
        events.setdefault((venue, person), []).append((int(t), scan, direction > 0, zone))
    revs = store.query_columns(load_sql("qrtrace.sinks", "stored_history_revisions"),
                               {"venues": venues, "persons": persons, "keys": keys})  # fmt: skip
    revision: dict[tuple[str, str], int] = {}
    for venue, person, r in zip(revs["venue_id"].tolist(), revs["person"].tolist(), revs["revision"].tolist(),
                                strict=True):  # fmt: skip
        revision[(venue, person)] = max(revision.get((venue, person), 0), int(r))
    return StoredHistory(events, revision)


def latest_stored(store: Store, venues: set[str]) -> dict[str, int]:
    """The latest stored check-in time of each venue that has one."""
    rows = store.query_columns(load_sql("qrtrace.sinks", "latest_checkin"), {"venues": sorted(venues)})
    return dict(zip(rows["venue_id"].tolist(), map(int, rows["latest"].tolist()), strict=True))
