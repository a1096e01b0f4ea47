"""`qrtrace demo`: the main job end to end on the embedded store, for a newcomer's first run."""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from rich.console import Console

from qrtrace import render
from qrtrace.domain.posters import render_poster
from qrtrace.domain.venue_qr import encode_venue_qr, venue_signing_key
from qrtrace.embedded import EmbeddedRuntime, persons_in
from qrtrace.errors import InputError
from qrtrace.i18n import t
from qrtrace.notify.cohort import notify_cohort
from qrtrace.producers.simulator import (
    SimulationConfig,
    build_district,
    checkin_batches,
    expected_event_count,
)
from qrtrace.queries.reidentify import Identity
from qrtrace.queries.risk import load_rule
from qrtrace.queries.trace import TraceRules
from qrtrace.settings import Settings
from qrtrace.sinks.clickhouse_sql import load_sql
from qrtrace.sinks.exposure_sites import listed_rows, public_rows, publish_case_sites
from qrtrace.sites_render import sites_table
from qrtrace.stream_processors.batch import US_PER_DAY, US_PER_MINUTE

DEMO_MARKER = ".qrtrace-demo"


def _fresh_demo_store(settings: Settings) -> None:
    """The demo starts from an empty store, but never deletes a store it did not create."""
    path = settings.store_path
    if path.exists() and any(path.iterdir()):
        if not (path / DEMO_MARKER).exists():
            raise InputError(
                f"The store {path} already holds data that the demo did not create; "
                "run the demo with --store pointing to another directory."
            )
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / DEMO_MARKER).write_text("created by `qrtrace demo`; the demo may replace this store\n")


def _local_midnight(settings: Settings, days_back: int) -> datetime:
    today = datetime.now(settings.display_tz).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_back)


def run_demo(
    settings: Settings, population: int, days: int, seed: int, console: Console, reidentified: bool = False,
    market_zones: int = 0,
) -> None:
    """Simulate, ingest, trace one case and report coverage. The trace files in `exports/` hold pseudonyms
    unless `reidentified` (then identifiers and phones, 0600, with a warning). `market_zones` gives every
    market that many sections (venue zones; 0, the default, none)."""
    lang = settings.lang
    started = time.perf_counter()
    _fresh_demo_store(settings)
    start = _local_midnight(settings, days)
    config = SimulationConfig(seed=seed, start=start, days=days, population=population, market_zones=market_zones)
    district = build_district(config)
    end_us = round((start + timedelta(days=days)).timestamp() * 1_000_000)
    exports = settings.store_path / "exports"
    exports.mkdir(mode=0o700, exist_ok=True)
    with EmbeddedRuntime(settings) as rt:
        rt.register_venues(district.venues)
        rt.register_contacts([p.person_id for p in district.people], [p.phone for p in district.people])
        console.print(
            f"[bold]Sơn Dương[/]: {len(district.venues):,} venues, {len(district.people):,} people, "
            f"{days} days, {render.local_time(start, settings.display_tz)} → "
            f"{render.local_time(start + timedelta(days=days), settings.display_tz)}"
        )
        with render.progress(lang) as bar:
            task = bar.add_task(t("ingesting", lang), total=expected_event_count(district))
            report = rt.ingest(
                checkin_batches(district, settings.batch_size),
                source="simulator",
                on_batch=lambda n: bar.advance(task, n),
            )
        render.ingest_report(console, report, lang)
        _import_demo_census(rt, district.venues, seed, exports)

        # A positive case: someone seen at a few venues in the last two days, isolated at the end of the run.
        window_from, window_to = end_us - 2 * US_PER_DAY, end_us
        busiest = rt.store.query(
            load_sql("qrtrace.queries", "demo_case"),
            {"from_us": window_from, "to_us": window_to, "seed": seed,
             # the middle of the days simulated inside the window (one day simulated: its noon)
             "half_us": (max(window_from, end_us - days * US_PER_DAY) + window_to) // 2},
        )
        if not busiest["person"]:
            raise InputError("The simulation produced no visits to trace; try a larger --population.")
        raw_by_person = dict(
            zip(
                rt.pseudonymiser.many([p.person_id for p in district.people]),
                (p.person_id for p in district.people),
                strict=True,
            )
        )
        case_id = raw_by_person[busiest["person"][0]]
        person = rt.declare_case("DEMO-F0-1", case_id, window_from, window_to)
        rt.audit.record("declare_case", "DEMO-F0-1", person, "positive case declared", from_us=window_from,
                        to_us=window_to)  # the same entry as a declaration through the API
        rules = TraceRules(
            depth=settings.depth,
            grace_us=settings.grace_minutes * US_PER_MINUTE,
            min_overlap_us=settings.min_overlap_minutes * US_PER_MINUTE,
            until_us=end_us,
            risk=load_rule(None),
        )
        result, identities = rt.trace(case_id, window_from, window_to, rules, purpose="demo", case_id="DEMO-F0-1")
        # The same case with close contacts only as F2 sources (tracing as done by hand): how much shorter F2 is
        narrow, _ = rt.trace(case_id, window_from, window_to, replace(rules, sources="close"), purpose="demo",
                             case_id="DEMO-F0-1")  # fmt: skip
        doc = render.trace_dict(result, identities, settings.display_tz)
        console.print()
        names = rt.venue_names(render.shown_venue_ids([doc], limit=25))
        render.trace_tables(console, doc, lang, settings.display_tz, names, limit=25)
        if not reidentified:  # the store is pseudonymous: so are the files the demo leaves in it
            doc = render.trace_dict(result, {p: Identity(p, "") for p in persons_in([result])}, settings.display_tz)
        render.write_json(exports / "trace-DEMO-F0-1.json", doc)
        render.write_call_list(exports / "trace-DEMO-F0-1.csv", [doc])
        f2 = [sum(c.hop == 2 for c in r.contacts) for r in (result, narrow)]
        console.print(t("demo_close_sources", lang).format(all=f"{f2[0]:,}", close=f"{f2[1]:,}"))

        # Public exposure sites: the case's venues and times, never a person (GET /public/ once served)
        sites = publish_case_sites(rt, settings, case_id, window_from, window_to,
                                   purpose="demo: public exposure sites", actor=settings.actor, case_id="DEMO-F0-1")
        console.print()
        sites_table(console, listed_rows(rt.store, settings, lang)[:10], lang, settings.display_tz)
        public = public_rows(rt.store, settings, lang)
        render.write_json(exports / "exposure-sites.json", public)
        console.print(t("demo_sites", lang).format(n=len(sites), path=exports / "exposure-sites.json"))

        # Warn the close contacts: one message each through a file gateway (JSON lines, as an office that sends
        # by hand gets them); opening their numbers is re-identification, audited with the purpose
        outbox = exports / "notifications-close.jsonl"
        sent = notify_cohort(rt, settings, [result], "close", f"file:{outbox}",
                             "demo: warn the close contacts of DEMO-F0-1", settings.actor)  # fmt: skip
        console.print(t("demo_notified", lang).format(sent=f"{sent['sent']:,}", failed=f"{sent['failed']:,}",
                                                     path=outbox))  # fmt: skip

        console.print()
        coverage = rt.coverage(as_of_us=end_us, days=1)
        render.coverage_tables(console, coverage, settings)
        from qrtrace.census_render import coverage_census

        coverage_census(console, coverage, lang, shown=0)  # the list: exports/coverage.json
        (exports / "coverage.json").write_bytes(
            orjson.dumps(render.coverage_dict(coverage, settings.display_tz), option=orjson.OPT_INDENT_2)
        )

        venue = max(district.venues, key=lambda v: v.capacity)
        communes = dict(
            zip(
                *rt.store.query("SELECT commune_code, name_vi FROM qrtrace.communes FINAL").values(),
                strict=True,
            )
        )
        payload = encode_venue_qr(venue, venue_signing_key(rt.keyring.venue_signing_seed), datetime.now(UTC))
        poster = render_poster(
            venue,
            payload,
            communes.get(venue.commune_code, ""),
            exports / f"poster-{venue.venue_id}.png",
            lang=lang,
        )
        units = rt.store.query(load_sql("qrtrace.queries", "communes"))
        district_code = dict(zip(units["commune_code"], units["district_code"], strict=True))[venue.commune_code]
    from qrtrace.api.server import DEMO_TOKENS, issue_demo_tokens

    issue_demo_tokens(settings, venue.venue_id, venue.commune_code, district_code)
    console.print()
    console.print(f"[bold]{t('files', lang)}[/]")
    console.print(f"  {t('store', lang)}: {settings.store_path}")
    console.print(f"  trace: {exports / 'trace-DEMO-F0-1.json'} , {exports / 'trace-DEMO-F0-1.csv'}")
    if reidentified:
        console.print("  " + t("plain_ids_warning", lang).format(path=exports / "trace-DEMO-F0-1.*"), style="bold red")
    else:
        console.print("  " + t("pseudonymous_files", lang))
    console.print(f"  exposure sites: {exports / 'exposure-sites.json'}  (public: /public/ under qrtrace serve)")
    console.print(f"  notifications (close contacts, file gateway): {exports / 'notifications-close.jsonl'}")
    console.print(f"  coverage: {exports / 'coverage.json'}")
    console.print(f"  poster: {poster}")
    console.print(f"  keys: {settings.key_file}")
    console.print(f"  console: qrtrace serve  (demo sign-in tokens: {settings.store_path / DEMO_TOKENS})")
    console.print(f"demo: {time.perf_counter() - started:.1f} s")


def _import_demo_census(rt: EmbeddedRuntime, venues: list, seed: int, exports: Path) -> None:
    """The demo district's deployment census (qrtrace.domain.census.demo_census), written to exports/census.csv
    and imported as a commune would: coverage then has a real denominator (required / registered)."""
    from qrtrace.domain.census import census_csv, demo_census, read_table
    from qrtrace.queries.census import import_census

    officer_commune = max(venues, key=lambda v: v.capacity).commune_code  # the demo commune officer's
    communes = sorted(rt.commune_codes())
    path = exports / "census.csv"
    path.write_text(census_csv(demo_census(venues, communes, seed, always={officer_commune})), encoding="utf-8")
    import_census(rt.store, rt.audit, read_table(path.read_bytes(), path.name), str(path), None)
