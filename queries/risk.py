"""Risk of an exposure: `close` or `casual`, by a named, versioned rule set. Pure core (numpy, no I/O).

An exposure is close when the two people were together long enough in the same zone (the threshold is a
setting per venue category), or at all while the venue was over capacity (its occupancy windows); every
other exposure is casual. A contact's tier is the highest among the exposures that placed them. Tiers
label and order a cohort; they never change who is placed at which hop (only `sources="close"`, which
expands from close contacts alone, changes F2+).

Rule sets are JSON files: the shipped ones in queries/rules/ (`qrtrace-2026`, the default, and the preset
`pc-covid-2021`, the national app's rule: a scan within 1 hour of the source's scan at the same venue), or
any file a health office writes in that shape. A trace records the rule's name and version it used.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from qrtrace.errors import InputError

US_PER_MINUTE = 60_000_000
CASUAL, CLOSE = 0, 1
TIERS = ("casual", "close")  # a tier's code is its position
DEFAULT_RULE = "qrtrace-2026"
KINDS = ("overlap", "scan_window")


@dataclass(frozen=True)
class RiskRule:
    """A rule set. kind "overlap": close when overlap >= the venue category's threshold (the default
    `close_overlap_minutes` elsewhere) and, if `same_zone`, both visits were in one zone (venues without
    zones have one), or, if `over_capacity`, any overlap fell in an over-capacity window of the venue.
    kind "scan_window": close when the two scans (visit starts) are at most `scan_window_minutes` apart."""

    name: str
    version: int
    kind: str = "overlap"
    close_overlap_minutes: float = 15
    category_close_overlap_minutes: tuple[tuple[str, float], ...] = ()
    same_zone: bool = True
    over_capacity: bool = True
    scan_window_minutes: float = 60
    description: str = field(default="", compare=False)

    @property
    def label(self) -> dict[str, object]:
        """What a trace records: {"name", "version"}."""
        return {"name": self.name, "version": self.version}

    def close_overlap_us(self, category: str) -> int:
        return round(dict(self.category_close_overlap_minutes).get(category, self.close_overlap_minutes)
                     * US_PER_MINUTE)  # fmt: skip

    @property
    def needs_occupancy(self) -> bool:
        return self.kind == "overlap" and self.over_capacity

    @classmethod
    def of(cls, doc: Mapping[str, object], where: str) -> RiskRule:
        """A rule from its JSON document; a bad one is an InputError naming `where` and the field."""
        known = {"name", "version", "kind", "close_overlap_minutes", "category_close_overlap_minutes",
                 "same_zone", "over_capacity", "scan_window_minutes", "description"}  # fmt: skip
        unknown = sorted(set(doc) - known)
        if unknown:
            raise InputError(f"{where}: unknown field {unknown[0]!r} in the rule set.")
        name, version, kind = doc.get("name"), doc.get("version"), doc.get("kind", "overlap")
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"{where}: a rule set needs a \"name\".")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise InputError(f"{where}: \"version\" must be a whole number from 1.")
        if kind not in KINDS:
            raise InputError(f"{where}: \"kind\" is one of {', '.join(KINDS)}, not {kind!r}.")
        by_category = doc.get("category_close_overlap_minutes", {})
        if not isinstance(by_category, dict):
            raise InputError(f"{where}: \"category_close_overlap_minutes\" maps a category code to minutes.")
        for key in ("close_overlap_minutes", "scan_window_minutes", *by_category):
            value = by_category[key] if key in by_category else doc.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InputError(f"{where}: {key!r} must be a number of minutes, 0 or more.")
        for key in ("same_zone", "over_capacity"):
            if not isinstance(doc.get(key, True), bool):
                raise InputError(f"{where}: {key!r} is true or false.")
        return cls(
            name=name,
            version=version,
            kind=str(kind),
            close_overlap_minutes=float(doc.get("close_overlap_minutes", 15)),  # type: ignore[arg-type]
            category_close_overlap_minutes=tuple(sorted((str(k), float(v)) for k, v in by_category.items())),
            same_zone=bool(doc.get("same_zone", True)),
            over_capacity=bool(doc.get("over_capacity", True)),
            scan_window_minutes=float(doc.get("scan_window_minutes", 60)),  # type: ignore[arg-type]
            description=str(doc.get("description", "")),
        )


def shipped_rules() -> list[str]:
    """The names of the rule sets that come with qrtrace."""
    folder = resources.files("qrtrace.queries").joinpath("rules")
    return sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json"))


def load_rule(name_or_path: str | None) -> RiskRule:
    """A shipped rule set by name (default: qrtrace-2026), or a JSON file by path."""
    name = name_or_path or DEFAULT_RULE
    if name.endswith(".json") or "/" in name:
        path = Path(name)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"Cannot read the rule set {path}: {exc.strerror or exc}.") from None
        where = str(path)
    else:
        if name not in shipped_rules():
            raise InputError(f"There is no rule set {name!r}; the shipped ones are {', '.join(shipped_rules())} "
                             "(or give a path to a JSON file).")  # fmt: skip
        text = resources.files("qrtrace.queries").joinpath("rules", f"{name}.json").read_text(encoding="utf-8")
        where = f"rule set {name}"
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where} is not valid JSON (line {exc.lineno}: {exc.msg}).") from None
    if not isinstance(doc, dict):
        raise InputError(f"{where}: a rule set is a JSON object.")
    return RiskRule.of(doc, where)


@dataclass(frozen=True)
class RiskContext:
    """What the rule needs to know of the venues, keyed like the trace reader's venues (integer codes for
    the trace index, venue ids for a store): each venue's close threshold and its over-capacity windows.

    `dense`: the keys are codes 0..n-1 (position = code), so a look-up is an index, not a hash."""

    rule: RiskRule
    venue_keys: np.ndarray  # the venues the context knows (codes or ids)
    close_us: np.ndarray  # int64, each known venue's close threshold
    over_keys: np.ndarray  # int64 sorted: venue position << 32 | occupancy window number, over capacity
    window_us: int
    dense: bool = False
    _index: pd.Index | None = field(default=None, compare=False, repr=False)
    # The reader's key of zone "": a venue-wide scan (the venue's main QR, a staff scan, a paper log) at a
    # venue with zones. Where in the venue that person was is not known, so it counts as every zone there.
    wide_zone: object = ""

    @classmethod
    def of(cls, rule: RiskRule, venue_keys: np.ndarray, categories: Sequence[str], over_venues: np.ndarray,
           over_window_starts: np.ndarray, window_us: int, dense: bool = False, wide_zone: object = ""
           ) -> RiskContext:  # fmt: skip
        """From the venues (keys and categories) and the over-capacity windows (venue key, window start);
        `wide_zone`: the reader's key of zone "" (the venue as a whole)."""
        venue_keys = np.asarray(venue_keys)
        names, which = np.unique(np.asarray(list(categories), dtype=object).astype(str), return_inverse=True)
        close = np.array([rule.close_overlap_us(c) for c in names.tolist()], dtype=np.int64)[which]
        ctx = cls(rule, venue_keys, close, np.empty(0, np.int64), window_us, dense, wide_zone=wide_zone)
        if rule.needs_occupancy and len(over_venues):
            pos = ctx.positions(np.asarray(over_venues))
            known = pos >= 0
            keys = pos[known] << 32 | np.asarray(over_window_starts, dtype=np.int64)[known] // window_us
            ctx = cls(rule, venue_keys, close, np.unique(keys), window_us, dense, ctx._index, wide_zone)
        return ctx

    @classmethod
    def plain(cls, rule: RiskRule, window_us: int = 15 * US_PER_MINUTE) -> RiskContext:
        """A context that knows no venue: the rule's default threshold everywhere, never over capacity."""
        return cls(rule, np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64), window_us, True)

    def crowded_venues(self) -> np.ndarray:
        """By venue position: whether the venue has any over-capacity window (cached)."""
        cached = self.__dict__.get("_crowded")
        if cached is None:
            cached = np.zeros(len(self.venue_keys), dtype=bool)
            cached[np.unique(self.over_keys >> 32)] = True
            object.__setattr__(self, "_crowded", cached)
        return cached

    def positions(self, venues: np.ndarray) -> np.ndarray:
        """Each venue's position in venue_keys, -1 when unknown."""
        if self.dense and venues.dtype != object:
            pos = np.asarray(venues, dtype=np.int64)
            return np.where((pos >= 0) & (pos < len(self.venue_keys)), pos, -1)
        if self._index is None:
            object.__setattr__(self, "_index", pd.Index(self.venue_keys))
        assert self._index is not None
        return self._index.get_indexer(venues).astype(np.int64)


def exposure_risk(ctx: RiskContext, venue: np.ndarray, s_start: np.ndarray, t_start: np.ndarray,
                  start: np.ndarray, end: np.ndarray, same_zone: np.ndarray | None) -> np.ndarray:  # fmt: skip
    """Each exposure's tier code (CLOSE or CASUAL), columnar. `start`/`end` bound the exposure (its overlap),
    `s_start`/`t_start` are the two visits' starts (their scans), `same_zone` whether both were in one zone
    (None: the reader has no zones, so they were)."""
    rule = ctx.rule
    if rule.kind == "scan_window":
        return (np.abs(t_start - s_start) <= round(rule.scan_window_minutes * US_PER_MINUTE)).astype(np.uint8)
    pos = ctx.positions(venue) if len(ctx.venue_keys) else np.full(len(venue), -1, dtype=np.int64)
    default = round(rule.close_overlap_minutes * US_PER_MINUTE)
    threshold = np.where(pos >= 0, ctx.close_us[np.maximum(pos, 0)], default) if len(ctx.close_us) else default
    close = end - start >= threshold
    if rule.same_zone and same_zone is not None:
        close &= same_zone
    if rule.over_capacity and len(ctx.over_keys):
        # only the exposures not close already, at venues that were ever over capacity, are looked up
        crowded = ctx.crowded_venues()
        ask = np.flatnonzero(~close & (pos >= 0))
        ask = ask[crowded[pos[ask]]]
        if len(ask):
            first = start[ask] // ctx.window_us
            last = np.maximum(first, (end[ask] - 1) // ctx.window_us)
            lo = np.searchsorted(ctx.over_keys, pos[ask] << 32 | first, "left")
            hi = np.searchsorted(ctx.over_keys, pos[ask] << 32 | last, "right")
            close[ask[hi > lo]] = True
    return close.astype(np.uint8)


def tier_names(codes: np.ndarray) -> list[str]:
    """Tier codes to their names."""
    return [TIERS[c] for c in np.asarray(codes, dtype=np.int64).tolist()]
