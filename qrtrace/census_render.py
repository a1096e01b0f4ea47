"""How the deployment census is shown at a terminal: the import's report, the census list, and the census
part of `qrtrace report coverage` (required / registered per commune, communes without a census, the
establishments not registered yet). Cells are text people typed: rich Text, never markup."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from qrtrace.domain.categories import load_categories
from qrtrace.domain.census import CensusImport, Establishment
from qrtrace.i18n import t
from qrtrace.queries.coverage import CoverageReport

UNREGISTERED_SHOWN = 50  # the terminal lists this many; --json and the exports carry all of them


def refused_lines(result: CensusImport, lang: str) -> list[str]:
    """One line per refused row, in the file's order."""
    return [t("census_refused_row", lang).format(row=r.row, column=r.column, reason=r.reason) for r in result.refused]


def census_dict(result: CensusImport) -> dict:
    """The import's answer (CLI --json and the API): counts, and each refused row with its row and column."""
    return {
        "accepted": len(result.accepted),
        "refused": [{"row": r.row, "column": r.column, "reason": r.reason} for r in result.refused],
        "rows_read": result.rows_read,
        "communes": sorted({e.commune_code for e in result.accepted}),
    }


def census_table(console: Console, rows: Sequence[Establishment], lang: str) -> None:
    if not rows:
        console.print(t("census_empty", lang))
        return
    cats = load_categories()
    table = Table(show_edge=False, pad_edge=False, title=t("census_title", lang))
    for key in ("commune", "census_col_id", "census_col_name", "census_col_category", "census_col_address", "venue"):
        table.add_column(_label(key, lang))
    for e in rows:
        table.add_row(*map(Text, (e.commune_code, e.establishment_id, e.name, cats[e.category].name(lang), e.address,
                                  e.venue_id or "–")))  # fmt: skip
    console.print(table)


_COLUMNS = {"census_col_id": ("Mã cơ sở", "Establishment"), "census_col_name": ("Tên cơ sở", "Name"),
            "census_col_category": ("Loại hình", "Category"), "census_col_address": ("Địa chỉ", "Address"),
            "venue": ("Mã địa điểm", "Venue")}  # fmt: skip


def _label(key: str, lang: str) -> str:
    if key in _COLUMNS:
        vi, en = _COLUMNS[key]
        return en if lang == "en" else vi
    return t(key, lang)


def coverage_census(console: Console, report: CoverageReport, lang: str, shown: int = UNREGISTERED_SHOWN) -> None:
    """Below the coverage tables: required / registered per commune with a census, the communes without one
    (their figures are registered venues only), and the establishments not registered yet."""
    with_census = [c for c in report.communes if c.census]
    without = [escape(f"{c.name} ({c.commune_code})") for c in report.communes if not c.census]
    if with_census:
        table = Table(show_edge=False, pad_edge=False, title=t("census_title", lang))
        table.add_column(t("commune", lang))
        for key in ("census_required", "census_required_registered", "registered_short", "active"):
            table.add_column(t(key, lang), justify="right")
        missing = Counter(e.commune_code for e in report.unregistered)
        table.add_column(t("census_unregistered", lang), justify="right")
        for c in with_census:
            table.add_row(Text(f"{c.name} ({c.commune_code})"), f"{c.required:,}",
                          f"{c.required_registered:,}/{c.required:,} ({c.required_share:.0%})", f"{c.registered:,}",
                          f"{c.active_venues:,}", f"{missing.get(c.commune_code, 0):,}")  # fmt: skip
        console.print(table)
    console.print(f"{t('census_none', lang)}: {', '.join(without) if without else '–'}")
    if report.unregistered:
        cats = load_categories()
        console.print(f"{t('census_unregistered', lang)}: {len(report.unregistered):,}")
        for e in report.unregistered[:shown]:
            console.print(Text(f"  {e.commune_code} · {e.establishment_id} · {e.name} · {cats[e.category].name(lang)}"
                               f" · {e.address}"))  # fmt: skip
        if len(report.unregistered) > shown and shown:
            console.print(f"  … {len(report.unregistered) - shown:,}")
