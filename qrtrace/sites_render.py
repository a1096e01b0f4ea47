"""Exposure sites for people at a terminal: one rich table (`qrtrace sites list`, `publish`, `withdraw`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timezone

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from qrtrace import render
from qrtrace.i18n import t


def sites_table(console: Console, rows: Sequence[dict], lang: str, tz: timezone, title: str | None = None) -> None:
    """Sites as `sinks.exposure_sites.listed_rows` gives them: site, venue, commune, category, from, to, case,
    status; then the advice once per distinct text (it is usually the same for every site of a case)."""
    if not rows:
        console.print(t("no_sites", lang))
        return
    table = Table(title=title or t("sites_title", lang), title_justify="left")
    for key in ("site", "venue", "commune", "category", "from", "to", "case", "status"):
        table.add_column(t(key, lang), overflow="fold")
    for r in rows:
        status = t("site_withdrawn" if r["status"] == "withdrawn" else "site_active", lang)
        table.add_row(
            r["site_id"], escape(f"{r['venue_name']} ({r['venue_id']})"), escape(r["commune_name"]),
            escape(r["category_name"]), render.local_time(r["from"], tz, year=True),
            render.local_time(r["to"], tz, year=True),
            escape(str(r.get("case_id") or "–")), status,
        )  # fmt: skip
    console.print(table)
    for advice in dict.fromkeys(r["advice"] for r in rows):
        console.print(f"{t('advice', lang)}: {escape(advice)}")
