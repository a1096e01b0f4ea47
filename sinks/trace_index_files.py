"""The trace index on disk and its link to the store: build it from the visits, follow the visit feed.

`queries/trace_index.py` is the index itself (pure). This adapter:
- builds it from the store, a UTC day at a time (each visit's latest row, withdrawn ones left out), when it
  is missing or stale: made from another store, fallen behind the feed's few days, or invalidated by a
  repair;
- follows `qrtrace.visit_feed` (filled by a materialized view on every visit insert, whoever the writer)
  by its insert stamp, with a margin for inserts still under way; applying a row twice changes nothing;
- keeps it in a directory of .npy files (day segments, dictionaries) that a process memory-maps in
  milliseconds, and a small file of what the feed brought since (the overlay). `meta.json` names the
  current files and is replaced atomically; files it no longer names are removed. One process writes at
  a time (a lock file); others use what they caught up with in memory.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qrtrace.queries.trace_index import (
    FEED_COLUMNS,
    US_PER_DAY,
    Dictionary,
    Overlay,
    Segment,
    TraceIndex,
    as_bytes,
    build_segment,
    empty_feed,
    latest_rows,
    person_days_of,
)
from qrtrace.sinks.clickhouse_sql import load_sql
from qrtrace.sinks.store import Store

FORMAT = 4  # 2: segments keep each venue's longest visit; 3: the people's days (person_days); 4: zones
# An insert is stamped when it starts and read once it is done: each catch-up reads this far before the
# latest stamp it saw again (rows applied twice change nothing).
FEED_MARGIN_S = 30
FEED_KEEP_DAYS = 3  # the feed keeps this many days; an index further behind rebuilds from the visits
MERGE_ROWS = 200_000  # an overlay past this many rows is folded into the day segments
IDLE_MERGE_ROWS = 20_000  # ... or past this many when the follower has nothing else to do
SAVE_QUIET_MARK_S = 600  # a follower with nothing new saves its mark this seldom
SAVE_EVERY_S = 30.0  # a following server saves an unmerged catch-up at most this often
DAYS_CHECK_S = 60.0  # a following server sees a repair, or the days retention dropped, this soon
TRIM_EVERY_S = 3600.0  # ... and trims the feed's old days this often


@dataclass
class Followed:
    """An index and how far into the feed it has read (seconds of the store's clock)."""

    index: TraceIndex
    mark_s: int
    store_id: int
    built_s: float | None = None  # how long a build took, when this process built it


class IndexFiles:
    """A trace index directory: load, save, build, catch up (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._mapped_days: tuple[np.ndarray | None, str | None] = (None, None)  # what `load` mapped, from where

    # -- opening -------------------------------------------------------------------------------
    def open(self, store: Store, on_progress: Callable[[int, int], None] | None = None) -> Followed:
        """The index of this store, caught up with its feed: loaded if current, else built (and saved)."""
        store_id = store_id_of(store)
        followed = self.load(store_id)
        now_s = store_clock(store)
        if followed is None or followed.mark_s < now_s - FEED_KEEP_DAYS * 86_400 + 3_600:
            followed = build(store, store_id, on_progress)
            self.save(followed)
            trim_feed(store, now_s)
        followed = self.forget_dropped_days(store, followed)
        return catch_up(store, followed, now_s)

    def load(self, store_id: int) -> Followed | None:
        """The saved index of the store `store_id`, memory-mapped; None when absent or of another store."""
        for _ in range(3):  # a concurrent save may remove the files of the meta.json just read: read it again
            meta = self._meta()
            if meta.get("format") != FORMAT or meta.get("store_id") != store_id:
                return None
            try:
                return self._load(meta)
            except (OSError, ValueError, KeyError):
                time.sleep(0.05)
        return None

    def _load(self, meta: dict) -> Followed:
        d = self.directory

        def mapped(name: str) -> np.ndarray:
            # A plain ndarray over the mapping: numpy's memmap subclass costs microseconds on every slice.
            return np.asarray(np.load(d / name, mmap_mode="r", allow_pickle=False))

        segments = {}
        for day, folder in meta["segments"].items():
            arrays = {name: mapped(f"{folder}/{name}.npy") for name in Segment.ARRAYS}
            segments[int(day)] = Segment(int(day), longest=int(meta["longest"][day]), origin=folder, **arrays)
        people = Dictionary(mapped(meta["people"]), origin=meta["people"])
        venues = Dictionary(mapped(meta["venues"]), origin=meta["venues"])
        zones = Dictionary(mapped(meta["zones"]), origin=meta["zones"])
        person_days = mapped(meta["person_days"])
        self._mapped_days = (person_days, meta["person_days"])
        index = TraceIndex(people, venues, segments, person_days=person_days, zones=zones)
        if meta.get("live"):
            with np.load(d / meta["live"], allow_pickle=False) as live:
                rows = {name: live[f"row_{name}"] for name in FEED_COLUMNS}
                dead = {int(k[5:]): live[k] for k in live.files if k.startswith("dead_")}
                people = Dictionary(people.base, live["people_tail"], origin=people.origin)
                venues = Dictionary(venues.base, live["venues_tail"], origin=venues.origin)
                zones = Dictionary(zones.base, live["zones_tail"], origin=zones.origin)
            index = TraceIndex(people, venues, segments, dead, Overlay.of(rows), person_days, zones)
        return Followed(index, int(meta["mark_s"]), int(meta["store_id"]))

    # -- saving --------------------------------------------------------------------------------
    def save(self, followed: Followed) -> bool:
        """Write what is not on disk yet and point meta.json at it; False when another process holds
        the lock (it is saving its own catch-up, which is as good)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / "lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            self._save(followed)
        return True

    def _save(self, followed: Followed) -> None:
        d, index = self.directory, followed.index
        old = self._meta()
        # Never a generation seen before (not even after meta.json was lost): a process that mapped files of
        # an earlier one must never find other arrays under the same names.
        on_disk = [int(m.group(1)) for f in d.iterdir() if (m := re.search(r"-g(\d+)", f.name))]
        generation = max([int(old.get("generation", 0)), *on_disk]) + 1
        same_store = old.get("store_id") == followed.store_id
        known = {int(k): v for k, v in old.get("segments", {}).items()} if same_store else {}
        segments: dict[str, str] = {}
        for day, segment in index.segments.items():
            folder = segment.origin
            if folder is None or known.get(day) != folder:  # built or merged since it was mapped
                folder = f"day-{day}-g{generation}"
                _write_arrays(d / folder, {name: getattr(segment, name) for name in Segment.ARRAYS})
            segments[str(day)] = folder
        people = _reuse_or_write(d, old.get("people"), index.people, f"people-g{generation}.npy")
        venues = _reuse_or_write(d, old.get("venues"), index.venues, f"venues-g{generation}.npy")
        zones = _reuse_or_write(d, old.get("zones"), index.zones, f"zones-g{generation}.npy")
        mapped_days, days_file = self._mapped_days
        if mapped_days is not index.person_days or old.get("person_days") != days_file:
            days_file = f"person-days-g{generation}.npy"
            _write_arrays(d, {days_file[:-4]: index.person_days})
        live = None
        o = index.overlay
        if len(o) or index.dead or len(index.people.tail) or len(index.venues.tail) or len(index.zones.tail):
            live = f"live-g{generation}.npz"
            arrays = {f"row_{k}": v for k, v in o.rows.items()}
            arrays |= {f"dead_{day}": rows for day, rows in index.dead.items()}
            _atomic_npz(d / live, arrays | {"people_tail": index.people.tail, "venues_tail": index.venues.tail,
                                            "zones_tail": index.zones.tail})  # fmt: skip
        meta = {
            "format": FORMAT,
            "store_id": followed.store_id,
            "generation": generation,
            "mark_s": followed.mark_s,
            "segments": segments,
            "longest": {str(day): s.longest for day, s in index.segments.items()},
            "people": people,
            "venues": venues,
            "zones": zones,
            "person_days": days_file,
            "live": live,
            "visits": len(index),
            "saved_at": time.time(),
            "build_seconds": followed.built_s if followed.built_s is not None else old.get("build_seconds"),
        }
        tmp = d / "meta.json.tmp"
        tmp.write_text(json.dumps(meta, indent=1))
        os.replace(tmp, d / "meta.json")
        _remove_unnamed(d, {*segments.values(), people, venues, zones, days_file, live or ""})

    def _meta(self) -> dict:
        try:
            return json.loads((self.directory / "meta.json").read_text())
        except (OSError, ValueError):
            return {}

    def invalidate(self) -> None:
        """Make the next open rebuild (after a repair rewrote visits without going through the feed)."""
        (self.directory / "meta.json").unlink(missing_ok=True)

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.directory.rglob("*") if p.is_file())

    def forget_dropped_days(self, store: Store, followed: Followed) -> Followed:
        """Retention dropped whole day partitions: drop the same days' segments."""
        stored = set(store.query(load_sql("qrtrace.sinks", "trace_index_days"))["day"])
        gone = {day for day in followed.index.days() if day not in stored}
        if not gone:
            return followed
        return Followed(followed.index.without_days(gone), followed.mark_s, followed.store_id, followed.built_s)


# -- building and following ---------------------------------------------------------------------------
def build(store: Store, store_id: int, on_progress: Callable[[int, int], None] | None = None) -> Followed:
    """A new index of every stored visit (`on_progress(rows done, rows in all)` after each day). The feed
    is followed from just before the build began, so visits stored meanwhile are caught up after."""
    started = time.perf_counter()
    mark = store_clock(store)  # rows stored from here on are caught up from the feed after the build
    people, person_hashes = _dictionary(store, "trace_index_people")
    venues, venue_hashes = _dictionary(store, "trace_index_venues")
    zones, zone_hashes = _dictionary(store, "trace_index_zones")
    days = store.query(load_sql("qrtrace.sinks", "trace_index_days"))
    total, done = sum(days["rows"]), 0
    segments: dict[int, Segment] = {}
    sql = load_sql("qrtrace.sinks", "trace_index_day")

    def read(day: int) -> object:
        return store.query_arrow(sql, {"day_start": day * US_PER_DAY, "day_end": (day + 1) * US_PER_DAY})

    # The next day is read (in the store) while this one is sorted (in numpy): one day ahead, no more, so at
    # most two days' rows are in memory.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="trace-index-read") as reader:
        ahead = reader.submit(read, int(days["day"][0])) if days["day"] else None
        for i, (day, rows) in enumerate(zip(days["day"], days["rows"], strict=True)):
            table = ahead.result() if ahead is not None else None
            ahead = reader.submit(read, int(days["day"][i + 1])) if i + 1 < len(days["day"]) else None
            segment = _day_segment(int(day), table, person_hashes, venue_hashes, zone_hashes, len(venues))
            if segment is not None:
                segments[int(day)] = segment
            done += int(rows)
            if on_progress:
                on_progress(done, total)
    index = TraceIndex(people, venues, segments, person_days=person_days_of(segments, len(people)), zones=zones)
    return Followed(index, mark, store_id, time.perf_counter() - started)


@dataclass(frozen=True)
class HashCodes:
    """The store's 64-bit hashes of a dictionary's names, sorted, with each one's code: a day's rows are
    coded by a numeric binary search, not by hashing strings in Python."""

    hashes: np.ndarray  # uint64, sorted
    codes: np.ndarray  # int64

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        """Codes of the names with these hashes, -1 for a name not in the dictionary. The hashes are searched
        in sorted order (6x faster than in row order at 5M into 10M: the searches share cache lines)."""
        if not len(self.hashes):
            return np.full(len(hashes), -1, dtype=np.int64)
        order = np.argsort(hashes)
        wanted = hashes[order]
        at = np.minimum(np.searchsorted(self.hashes, wanted), len(self.hashes) - 1)
        out = np.empty(len(hashes), dtype=np.int64)
        out[order] = np.where(self.hashes[at] == wanted, self.codes[at], -1)
        return out


def _day_segment(day: int, table: object, people: HashCodes, venues: HashCodes, zones: HashCodes,
                 n_venues: int) -> Segment | None:  # fmt: skip
    """One day's rows (every version) as a segment of the visits that exist."""
    cols = {name: table.column(name).to_numpy() for name in table.column_names}  # type: ignore[attr-defined]
    visit, version = cols["visit"], cols["version"]
    ordered = np.sort(visit)
    if len(ordered) > 1 and (ordered[1:] == ordered[:-1]).any():  # some visit has several rows: keep its latest
        order = np.lexsort((version, visit))
        last = np.ones(len(order), dtype=bool)
        last[:-1] = visit[order][1:] != visit[order][:-1]
        keep = order[last]
    else:
        keep = np.arange(len(visit))
    keep = keep[cols["withdrawn"][keep] == 0]
    person = people.lookup(cols["person_hash"][keep])
    venue = venues.lookup(cols["venue_hash"][keep])
    zone = zones.lookup(cols["zone_hash"][keep])
    known = (person >= 0) & (venue >= 0) & (zone >= 0)  # stored after the dictionaries were read: the feed has it
    keep, person, venue, zone = keep[known], person[known], venue[known], zone[known]
    if not len(keep):
        return None
    return build_segment(day, venue, person, cols["start_us"][keep], cols["end_us"][keep], n_venues, zone)


def catch_up(store: Store, followed: Followed, now_s: int | None = None) -> Followed:
    """Apply what the feed holds from the mark (less the margin) on; the rows that replaced segment rows
    get their (venue, person, start)'s latest rows from the store once more (see TraceIndex.applied).
    `now_s`, the store's clock read before this: everything stamped a margin before it has been seen, so
    the mark moves there even when the feed was quiet."""
    since = max(0, followed.mark_s - FEED_MARGIN_S)
    rows = store.query_columns(load_sql("qrtrace.sinks", "trace_index_feed"), {"since_s": since})
    quiet_mark = max(followed.mark_s, (now_s - FEED_MARGIN_S) if now_s else 0)
    if not len(rows["start_us"]):
        return Followed(followed.index, quiet_mark, followed.store_id, followed.built_s)
    feed = _feed_typed(rows)
    index, replaced = followed.index.applied(feed)
    if len(replaced):
        index, _ = index.applied(stored_visits(store, {k: v[replaced] for k, v in feed.items()}))
    mark = max(quiet_mark, int(np.max(rows["stored_s"])))
    return Followed(index, mark, followed.store_id, followed.built_s)


def trim_feed(store: Store, now_s: int) -> None:
    """Drop the feed's days older than FEED_KEEP_DAYS (an index that far behind rebuilds anyway)."""
    from qrtrace.sinks.clickhouse_sql import literal

    cutoff = now_s // 86_400 - FEED_KEEP_DAYS
    for day in store.query(load_sql("qrtrace.sinks", "trace_index_feed_days"))["day"]:
        if int(day) < cutoff:  # an integer literal, from the parts list
            store.execute(f"ALTER TABLE qrtrace.visit_feed DROP PARTITION {literal(int(day), 'Int64')}")


def stored_visits(store: Store, keys: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The store's latest rows of the visits with these (venue, person, start), as feed rows."""
    unique = latest_rows(keys)  # fewer keys to send; which row is kept does not matter here
    triples = list(zip(unique["venue_id"].tolist(), unique["person"].tolist(), unique["start_us"].tolist(),
                       strict=True))  # fmt: skip
    out = []
    for lo in range(0, len(triples), 20_000):
        part = triples[lo : lo + 20_000]
        starts = [t[2] for t in part]
        params = {"keys": part, "min_start": min(starts), "max_start": max(starts)}
        out.append(_feed_typed(store.query_columns(load_sql("qrtrace.sinks", "trace_index_visits"), params)))
    return {name: np.concatenate([o[name] for o in out]) for name in FEED_COLUMNS}


def _feed_typed(rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Feed columns in the index's dtypes: a server's driver gives a UInt64 column as int64 when every
    value fits, and uint64 with int64 would concatenate to float64 (hashes would lose their low bits)."""
    types = empty_feed()
    names = ("venue_id", "person", "zone")  # as the store gives them; the index codes them
    return {name: rows[name] if name in names else np.asarray(rows[name]).astype(types[name].dtype)
            for name in FEED_COLUMNS}  # fmt: skip


def merge_if_large(followed: Followed, rows: int = MERGE_ROWS) -> tuple[Followed, bool]:
    """Fold the overlay into day segments when it holds more than `rows` rows."""
    if followed.index.overlay.live <= rows:
        return followed, False
    return Followed(followed.index.merged(), followed.mark_s, followed.store_id, followed.built_s), True


class IndexFollower:
    """A warm index for one process (`qrtrace serve`, a CLI command): `current()` is the latest snapshot,
    `refresh()` catches up with the feed (a thread calls it every `every_s` seconds in a server), merges a
    large overlay and saves what it did for the next process."""

    def __init__(self, files: IndexFiles, store: Store, on_progress: Callable[[int, int], None] | None = None):
        self.files, self.store = files, store
        self._followed = files.open(store, on_progress)
        self._saved_mark = self._followed.mark_s
        self._saved_at = -float("inf")
        self._days_checked_at = self._trimmed_at = time.monotonic()
        self.save_every_s = 0.0  # a CLI process saves what it caught up at once; `follow` sets SAVE_EVERY_S
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.refreshed_at = self.refresh_started_at = time.monotonic()  # the last catch-up's end and start
        self.built_s = self._followed.built_s

    def current(self) -> TraceIndex:
        return self._followed.index

    @property
    def followed(self) -> Followed:
        return self._followed

    def refresh(self, save: bool = True) -> TraceIndex:
        """Catch up with the feed now; merge and save when there is enough to be worth it."""
        with self._lock:
            self.refresh_started_at = time.monotonic()
            before = self._followed
            followed = catch_up(self.store, before, store_clock(self.store))
            idle = followed.index is before.index  # nothing new: a smaller overlay is worth merging now
            if time.monotonic() - self._days_checked_at > DAYS_CHECK_S:
                followed = self._recheck(followed)
                idle = False
            followed, merged = merge_if_large(followed, IDLE_MERGE_ROWS if idle else MERGE_ROWS)
            self._followed = followed
            self.refreshed_at = time.monotonic()
            # Saved after a merge, or when it changed and the last save is SAVE_EVERY_S old (a server
            # catching up twice a second does not rewrite its overlay each time), or when only the mark
            # moved far (a quiet store: the next open then reads less of the feed).
            due = time.monotonic() - self._saved_at >= self.save_every_s
            moved = followed.mark_s - self._saved_mark > SAVE_QUIET_MARK_S
            if save and (merged or (not idle and due) or moved) and self.files.save(followed):
                self._saved_mark, self._saved_at = followed.mark_s, time.monotonic()
            return followed.index

    def _recheck(self, followed: Followed) -> Followed:
        """What the feed does not carry, checked now and then: a repair or migration (a new store stamp:
        rebuild), days retention dropped (drop them too), and the feed's own old days (trim them)."""
        self._days_checked_at = time.monotonic()
        if store_id_of(self.store) != followed.store_id:
            rebuilt = build(self.store, store_id_of(self.store))
            self.built_s = rebuilt.built_s
            return catch_up(self.store, rebuilt, store_clock(self.store))
        if time.monotonic() - self._trimmed_at > TRIM_EVERY_S:
            trim_feed(self.store, store_clock(self.store))
            self._trimmed_at = time.monotonic()
        return self.files.forget_dropped_days(self.store, followed)

    def persist(self) -> None:
        """Catch up, merge a large overlay and save now (an ingesting process, after its pass is stored)."""
        with self._lock:
            followed = catch_up(self.store, self._followed, store_clock(self.store))
            followed, _ = merge_if_large(followed)
            self._followed = followed
            if self.files.save(followed):
                self._saved_mark, self._saved_at = followed.mark_s, time.monotonic()

    def follow(self, every_s: float = 0.5) -> None:
        """Refresh in a daemon thread every `every_s` seconds until `stop()` (a failed refresh is retried)."""

        def loop() -> None:
            self.current().warm()  # a server's traces should never wait for the disk
            while not self._stop.wait(every_s):
                try:
                    self.refresh()
                except Exception:  # the store may be away for a moment: the next tick tries again
                    continue

        self.save_every_s = SAVE_EVERY_S
        self._thread = threading.Thread(target=loop, name="trace-index-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


# -- small helpers ----------------------------------------------------------------------------------
def store_id_of(store: Store) -> int:
    return int(store.query(load_sql("qrtrace.sinks", "store_identity"))["created_at_us"][0] or 0)


def store_clock(store: Store) -> int:
    """The store's clock (seconds): the feed's stamps come from it, not from this machine's."""
    return int(store.query(load_sql("qrtrace.sinks", "store_clock"))["now_s"][0])


def _dictionary(store: Store, sql: str) -> tuple[Dictionary, HashCodes]:
    """A dictionary read from the store (names in byte order) and its names' hashes; refuses a store where
    two names share a hash (the day reads could not tell them apart)."""
    from qrtrace.errors import StoreError

    table = store.query_arrow(load_sql("qrtrace.sinks", sql))
    base = as_bytes(table.column("name").to_numpy(zero_copy_only=False))
    hashes = table.column("hash").to_numpy().astype(np.uint64)
    if len(base) > 1 and not (base[1:] > base[:-1]).all():  # the store's order is byte order; make sure
        order = np.argsort(base, kind="stable")
        base, hashes = base[order], hashes[order]
    order = np.argsort(hashes, kind="stable")
    sorted_hashes = hashes[order]
    if len(sorted_hashes) > 1 and (sorted_hashes[1:] == sorted_hashes[:-1]).any():
        raise StoreError("Two names in the store share a 64-bit hash; the trace index cannot be built "
                         "(set QRTRACE_TRACE_READER=store to trace from the store itself).")  # fmt: skip
    return Dictionary(base), HashCodes(sorted_hashes, order.astype(np.int64))


def _write_arrays(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        tmp = folder / f"{name}.npy.tmp"
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(array), allow_pickle=False)
        os.replace(tmp, folder / f"{name}.npy")


def _reuse_or_write(d: Path, name: str | None, dictionary: Dictionary, new_name: str) -> str:
    """The dictionary's base file: the one it is mapped from, or a new one."""
    if name and dictionary.origin == name:
        return name
    tmp = d / f"{new_name}.tmp"
    with open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(dictionary.base), allow_pickle=False)
    os.replace(tmp, d / new_name)
    return new_name


def _atomic_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def _remove_unnamed(d: Path, named: set[str]) -> None:
    """Delete files and folders meta.json no longer names (a process mapping them keeps its pages)."""
    import shutil

    for path in d.iterdir():
        if path.name in named or path.name in ("meta.json", "lock"):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
