"""Reference data as the API reads it: the communes (with their district and province) and the venue ids."""

from __future__ import annotations

from qrtrace.domain.admin_units import Commune
from qrtrace.sinks.clickhouse_sql import load_sql
from qrtrace.sinks.store import Store


def commune_rows(store: Store) -> list[Commune]:
    """Every registered commune, by commune code."""
    rows = store.query(load_sql("qrtrace.queries", "communes"))
    return [
        Commune(*row)
        for row in zip(rows["commune_code"], rows["name_vi"], rows["unit_type"], rows["district_code"],
                       rows["district_name_vi"], rows["province_code"], rows["province_name_vi"], strict=True)
    ]  # fmt: skip


def venue_ids(store: Store) -> list[str]:
    """The registered venue ids, in order."""
    return store.query(load_sql("qrtrace.queries", "venues"))["venue_id"]


def venue_zones(store: Store) -> dict[str, tuple[str, ...]]:
    """Every registered venue id -> its zones (() for a venue without zones): what the edge checks against."""
    from qrtrace.domain.zones import split_zones

    rows = store.query(load_sql("qrtrace.queries", "venues"))
    return {v: split_zones(z) for v, z in zip(rows["venue_id"], rows["zones"], strict=True)}
