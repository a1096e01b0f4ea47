"""What a risk rule needs from the store (each venue's category, the over-capacity windows), as a
`RiskContext` keyed like the trace reader's venues: venue ids for a store reader, the trace index's
integer codes for the index (then a look-up is an array index, not a hash)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from qrtrace.queries.risk import RiskContext, RiskRule
from qrtrace.sinks.clickhouse_sql import load_sql
from qrtrace.sinks.store import Store


def risk_context(store: Store, rule: RiskRule, window_us: int, since_us: int = 0,
                 venue_codes: Callable[[np.ndarray], np.ndarray] | None = None,
                 venues_known: int = 0, wide_zone: object = "") -> RiskContext:  # fmt: skip
    """The context of `rule` over the store's venues and over-capacity windows starting from `since_us`.
    `venue_codes` (with `venues_known`, how many codes the reader has) maps venue ids to the reader's
    integer codes (-1 when it has none), and `wide_zone` is its key of zone ""; without them the context is
    keyed by venue id and zone name."""
    venues = store.query(load_sql("qrtrace.queries", "risk_venues"))
    ids = np.asarray(venues["venue_id"], dtype=object)
    categories = np.asarray(venues["category"], dtype=object)
    over = {"venue_id": [], "window_start_us": []}
    if rule.needs_occupancy:
        over = store.query(load_sql("qrtrace.queries", "risk_over_capacity"), {"since_us": since_us})
    over_ids = np.asarray(over["venue_id"], dtype=object)
    over_starts = np.asarray(over["window_start_us"], dtype=np.int64)
    if venue_codes is None:
        return RiskContext.of(rule, ids, categories, over_ids, over_starts, window_us)
    # dense: position = the reader's code; venues it does not know (yet) keep the default threshold
    codes = venue_codes(ids) if len(ids) else np.empty(0, dtype=np.int64)
    by_code = np.full(venues_known, "", dtype=object)
    known = (codes >= 0) & (codes < venues_known)
    by_code[codes[known]] = categories[known]
    over_codes = venue_codes(over_ids) if len(over_ids) else np.empty(0, dtype=np.int64)
    keep = over_codes >= 0
    return RiskContext.of(rule, np.arange(venues_known, dtype=np.int64), by_code, over_codes[keep],
                          over_starts[keep], window_us, dense=True, wide_zone=wide_zone)  # fmt: skip
