"""The processor's configuration, built in one place from the venue registry and the settings, so the
embedded runtime and the Faust worker pair with the same dwell times, caps and clocks."""

from __future__ import annotations

from collections.abc import Sequence

from qrtrace.domain.categories import load_categories
from qrtrace.settings import Settings
from qrtrace.stream_processors.batch import US_PER_MINUTE
from qrtrace.stream_processors.pipeline import ProcessorConfig


def processor_config(
    venue_ids: Sequence[str], categories: Sequence[str], capacities: Sequence[int], settings: Settings
) -> ProcessorConfig:
    """Per venue: its category's default dwell, the visit cap derived from it, and its capacity."""
    cats = load_categories()
    dwell_minutes = [cats[c].default_dwell_minutes for c in categories]
    return ProcessorConfig(
        dwell_us_by_venue={v: d * US_PER_MINUTE for v, d in zip(venue_ids, dwell_minutes, strict=True)},
        capacity_by_venue={v: int(c) for v, c in zip(venue_ids, capacities, strict=True)},
        dedupe_window_us=settings.dedupe_window_hours * 60 * US_PER_MINUTE,
        occupancy_window_us=settings.occupancy_window_minutes * US_PER_MINUTE,
        cap_us_by_venue={v: settings.visit_cap_us(d) for v, d in zip(venue_ids, dwell_minutes, strict=True)},
        max_future_us=settings.max_future_us,
    )


def longest_allowed_visit_us(settings: Settings) -> int:
    """The longest visit any category allows under these settings (what a trace may look back)."""
    return max(settings.visit_cap_us(c.default_dwell_minutes) for c in load_categories().values())
