"""`qrtrace`: the command line. A thin shell: parse flags into Settings, call the runtime, render.

Errors are one sentence on stderr and a non-zero exit, never a traceback (QRTRACE_DEBUG=1 shows one).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.console import Console

from qrtrace import render
from qrtrace.errors import InputError, QrtraceError
from qrtrace.i18n import t
from qrtrace.settings import Settings, settings_from_env

if TYPE_CHECKING:
    from qrtrace.sinks.repair import StoreRepair
    from qrtrace.stream_processors.state_repair import StateRepair

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="qrtrace: QR check-in ingest, contact tracing (F0 -> F1 -> F2) and coverage reports.",
)
venues_app = typer.Typer(no_args_is_help=True, help="Venue registry.")
communes_app = typer.Typer(no_args_is_help=True, help="Administrative units (communes).")
report_app = typer.Typer(no_args_is_help=True, help="Reports for authorities.")
tokens_app = typer.Typer(no_args_is_help=True, help="API tokens (roles and scopes) for `qrtrace serve`.")
audit_app = typer.Typer(no_args_is_help=True, help="The audit log's tamper evidence (a hash chain).")
app.add_typer(audit_app, name="audit")
app.add_typer(venues_app, name="venues")
app.add_typer(tokens_app, name="tokens")
app.add_typer(communes_app, name="communes")
app.add_typer(report_app, name="report")
sites_app = typer.Typer(no_args_is_help=True, help="Public exposure sites: a case's venues and times, never a person.")
app.add_typer(sites_app, name="sites")

out = Console(highlight=False)


def _fail(message: str, code: int) -> None:
    """One line on stderr (never wrapped, never a traceback) and the exit code."""
    sys.stderr.write(message.replace("\n", " ") + "\n")
    sys.exit(code)


StoreOpt = Annotated[str | None, typer.Option("--store", help="Store directory or chdb:///path [env QRTRACE_STORE].")]
LangOpt = Annotated[str | None, typer.Option("--lang", help="Labels: vi or en [env QRTRACE_LANG].")]


def _settings(store: str | None, lang: str | None = None) -> Settings:
    if lang is not None and lang not in ("vi", "en"):
        raise InputError(f"--lang must be vi or en, not {lang!r}.")
    return settings_from_env().with_overrides(store=store, lang=lang)


def _runtime(settings: Settings):  # type: ignore[no-untyped-def]
    from qrtrace.embedded import EmbeddedRuntime  # deferred: opening chDB costs ~0.5 s

    return EmbeddedRuntime(settings)


def parse_time(value: str, flag: str, settings: Settings) -> int:
    """ISO 8601 to UTC microseconds; a time without an offset is read in the display zone (+07:00)."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"{flag} {value!r} is not an ISO 8601 time such as 2021-07-20T08:00:00+07:00.") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=settings.display_tz)
    return round(when.timestamp() * 1_000_000)


def _read_lines(path: Path, batch_size: int) -> Iterator[list[bytes]]:
    try:
        fh = sys.stdin.buffer if str(path) == "-" else path.open("rb")
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror}.") from None
    with fh:
        pending: list[bytes] = []
        tail = b""
        while block := fh.read(1 << 22):  # 4 MiB reads split in C, not a Python loop per line
            lines = (tail + block).split(b"\n")
            tail = lines.pop()
            pending.extend(line for line in lines if line.strip())
            while len(pending) >= batch_size:
                yield pending[:batch_size]
                pending = pending[batch_size:]
        if tail.strip():
            pending.append(tail)
        for i in range(0, len(pending), batch_size):
            yield pending[i : i + batch_size]


def read_cases_csv(path: Path, settings: Settings) -> list[tuple[str, str, int, int]]:
    """Rows of case_id,person_id,from,to; any bad row rejects the file with its line number."""
    import csv

    try:
        rows = list(csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines()))
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror}.") from None
    out = []
    for line_no, row in enumerate(rows, start=2):
        missing = [k for k in ("case_id", "person_id", "from", "to") if not (row.get(k) or "").strip()]
        if missing:
            raise InputError(
                f"{path} line {line_no}: missing {', '.join(missing)} (header: case_id,person_id,from,to)."
            )
        where = f"{path} line {line_no}"
        out.append((row["case_id"].strip(), row["person_id"].strip(),
                    parse_time(row["from"].strip(), f"{where}: from", settings),
                    parse_time(row["to"].strip(), f"{where}: to", settings)))  # fmt: skip
    if not out:
        raise InputError(f"{path} holds no cases.")
    return out


@venues_app.command("import")
def venues_import(file: Path, store: StoreOpt = None, lang: LangOpt = None) -> None:
    """Register venues from a CSV with header venue_id,name,category,commune_code,capacity (and optionally
    zones: the venue's zones separated by ';')."""
    from qrtrace.domain.venues import keep_registered_zones, read_venues_csv

    settings = _settings(store, lang)
    with _runtime(settings) as rt:
        venues = keep_registered_zones(file, read_venues_csv(file, rt.commune_codes()), rt.venues())
        links = _census_links_checked(rt, file)  # the optional establishment_id column (queries/census.py)
        rt.register_venues(venues)
        _census_link(rt, links)
    out.print(f"{t('venues_imported', settings.lang)}: {len(venues)}")


@communes_app.command("import")
def communes_import(file: Path, store: StoreOpt = None) -> None:
    """Import another district's communes (same columns as son_duong_communes.csv)."""
    from qrtrace.domain.admin_units import load_communes

    settings = _settings(store)
    communes = load_communes(file)
    with _runtime(settings) as rt:
        rt.import_communes(communes)
    out.print(f"{len(communes)} communes")


@app.command()
def ingest(
    file: Path,
    store: StoreOpt = None,
    lang: LangOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Ingest check-ins (JSON lines; '-' reads stdin); prints accepted / deduplicated / dead-lettered."""
    settings = _settings(store, lang)
    if str(file) != "-" and not file.exists():
        raise InputError(f"The file {file} does not exist.")
    total = file.stat().st_size if str(file) != "-" else None
    with _runtime(settings) as rt, render.progress(settings.lang, total is None or as_json) as bar:
        task = bar.add_task(t("ingesting", settings.lang), total=None)
        report = rt.ingest(
            _read_lines(file, settings.batch_size),
            source=f"file:{file.name}",
            on_batch=lambda n: bar.advance(task, n),
        )
    if as_json:
        out.print_json(orjson.dumps(render.ingest_dict(report)).decode())
    else:
        render.ingest_report(out, report, settings.lang)


@app.command()
def trace(
    person_id: Annotated[str | None, typer.Argument(help="The identifier the case checked in with.")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="Start of the infectious window (ISO 8601).")] = None,
    to: Annotated[str | None, typer.Option("--to", help="End of the infectious window (ISO 8601).")] = None,
    cases: Annotated[
        Path | None, typer.Option("--cases", help="CSV of many cases: case_id,person_id,from,to (one run).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="F2+ sources start no later than this (default: now).")] = None,
    depth: Annotated[int, typer.Option(min=1, max=6)] = 2,
    grace_minutes: Annotated[float, typer.Option(min=0)] = 30,
    min_overlap_minutes: Annotated[float, typer.Option(min=0)] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Also write the call list as CSV.")] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Write one JSON per case and the combined cohort (JSON, CSV) into this folder."),
    ] = None,
    purpose: Annotated[
        str, typer.Option(help="Why this trace is run (written to the audit log).")
    ] = "outbreak investigation",
    rule: Annotated[
        str | None,
        typer.Option("--rule", help="Risk rule set: qrtrace-2026 (default), pc-covid-2021, or a JSON file."),
    ] = None,
    sources: Annotated[
        str, typer.Option("--sources", help="F(k+1) sources: all contacts (default) or close contacts only.")
    ] = "all",
    store: StoreOpt = None,
    lang: LangOpt = None,
) -> None:
    """Trace a positive case (F0) to its F1, F2 ... contacts, with the evidence and risk tier of each."""
    from qrtrace.queries.risk import load_rule
    from qrtrace.queries.trace import SOURCES, TraceRules
    from qrtrace.sinks.audit import now_us
    from qrtrace.stream_processors.batch import US_PER_MINUTE

    settings = _settings(store, lang)
    if cases is not None:
        if person_id or from_ or to:
            raise InputError("Give either PERSON_ID with --from/--to, or --cases FILE.csv, not both.")
        case_rows = read_cases_csv(cases, settings)
    elif person_id and from_ and to:
        case_rows = [("", person_id, parse_time(from_, "--from", settings), parse_time(to, "--to", settings))]
    else:
        raise InputError("Give the case's PERSON_ID with --from and --to (or --cases FILE.csv).")
    for case_id, _, from_us, to_us in case_rows:
        if to_us < from_us:
            raise InputError(
                f"{case_id or 'The case'}: --to is before --from; the infectious window must run forwards."
            )
    if sources not in SOURCES:
        raise InputError(f"--sources is {' or '.join(SOURCES)}, not {sources!r}.")
    rules = TraceRules(
        depth=depth,
        grace_us=round(grace_minutes * US_PER_MINUTE),
        min_overlap_us=round(min_overlap_minutes * US_PER_MINUTE),
        until_us=parse_time(until, "--until", settings) if until else now_us(),
        risk=load_rule(rule),
        sources=sources,
    )
    quiet = as_json or cases is None  # a single case takes milliseconds; a day's cases can take minutes
    with _runtime(settings) as rt:
        _open_trace_index(rt, settings, as_json)
        with render.progress(settings.lang, quiet) as bar:
            task = bar.add_task(t("tracing", settings.lang), total=rules.depth)
            chunks = rt.trace_many_chunks(case_rows, rules, purpose,
                                          on_progress=lambda done: bar.update(task, completed=done * rules.depth))
            if not as_json:  # written a chunk of cases at a time: a day's cases never sit in memory together
                with render.TraceFiles(csv_out, out_dir) as files:
                    for results, identities in chunks:
                        docs = [render.trace_dict(r, identities, settings.display_tz) for r in results]
                        names = rt.venue_names(render.shown_venue_ids(docs))  # one look-up a chunk
                        for doc in docs:
                            files.add(doc)
                            render.trace_tables(out, doc, settings.lang, settings.display_tz, names)
                bar.update(task, completed=rules.depth)  # a trace that runs out of contacts stops early
            else:
                docs = [render.trace_dict(r, ids, settings.display_tz) for results, ids in chunks for r in results]
                with render.TraceFiles(csv_out, out_dir) as files:
                    for doc in docs:
                        files.add(doc)
                payload = docs[0] if cases is None else {"cases": docs, "cohort": render.combined_cohort(docs)}
                sys.stdout.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode() + "\n")
    if out_dir:
        out.print(f"{t('files', settings.lang)}: {len(files.written) - bool(csv_out)} → {out_dir}")
    for path in (csv_out, out_dir):  # identifiers in plain text: 0600, and said so
        if path:
            sys.stderr.write(t("plain_ids_warning", settings.lang).format(path=path) + "\n")


def _open_trace_index(rt, settings, quiet: bool) -> None:  # type: ignore[no-untyped-def]
    """Open the trace index before tracing: a build (missing or stale index) shows a progress bar and says
    how long it took, on stderr, so that --json output stays clean."""
    if settings.trace_reader != "index":
        return
    bars: list = []

    def on_build(done: int, total: int) -> None:
        if not bars:
            bars.append(render.progress_on_stderr(settings.lang, quiet))
            bars.append(bars[0].__enter__().add_task(t("index_building", settings.lang), total=total))
        bars[0].update(bars[1], completed=done, total=total)

    try:
        follower = rt.trace_index(on_build=on_build)
    finally:
        if bars:
            bars[0].__exit__(None, None, None)
    if follower.built_s is not None and not quiet:
        sys.stderr.write(t("index_built", settings.lang).format(visits=f"{len(follower.current()):,}",
                                                                seconds=follower.built_s) + "\n")  # fmt: skip


@report_app.command("coverage")
def report_coverage(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    as_of: Annotated[str | None, typer.Option(help="End of the period (default: now).")] = None,
    days: Annotated[int, typer.Option(min=1, max=60, help="Length of the period in days.")] = 1,
    chart: Annotated[Path | None, typer.Option(help="Also draw the report as a PNG chart (trend + communes).")] = None,
    store: StoreOpt = None,
    lang: LangOpt = None,
) -> None:
    """QR deployment coverage per commune x venue category, by office, with zero-scan communes and venues."""
    from qrtrace.sinks.audit import now_us

    settings = _settings(store, lang)
    as_of_us = parse_time(as_of, "--as-of", settings) if as_of else now_us()
    with _runtime(settings) as rt:
        report = rt.coverage(as_of_us, days)
        if chart is not None:
            from qrtrace.queries.coverage import daily_trend
            from qrtrace.report_charts import coverage_chart_png

            rows, first_day = rt.coverage_trend(as_of_us, 14)
            shown = render.local_time(as_of_us, settings.display_tz, year=True)
            title = f"{t('coverage_title', settings.lang)} · {shown}"
            chart.write_bytes(coverage_chart_png(report.communes, daily_trend(rows, None, first_day, 14), title,
                                                 settings.lang))  # fmt: skip
    if as_json:
        sys.stdout.write(
            orjson.dumps(render.coverage_dict(report, settings.display_tz), option=orjson.OPT_INDENT_2).decode() + "\n"
        )
    else:
        render.coverage_tables(out, report, settings)
        from qrtrace.census_render import coverage_census

        coverage_census(out, report, settings.lang)
    if chart is not None and not as_json:
        out.print(f"{t('files', settings.lang)}: {chart}")


@report_app.command("hotspots")
def report_hotspots(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    as_of: Annotated[str | None, typer.Option(help="End of the period (default: now).")] = None,
    days: Annotated[int, typer.Option(min=1, max=60, help="Length of the period in days.")] = 7,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Venues shown, the most crowded first.")] = 20,
    commune: Annotated[str | None, typer.Option(help="Only this commune (its code).")] = None,
    store: StoreOpt = None,
    lang: LangOpt = None,
) -> None:
    """Crowding hotspots: venues by occupancy windows over capacity and peak, busiest hours per category."""
    from qrtrace.hotspots_render import hotspots_dict, hotspots_tables
    from qrtrace.sinks.audit import now_us

    settings = _settings(store, lang)
    as_of_us = parse_time(as_of, "--as-of", settings) if as_of else now_us()
    with _runtime(settings) as rt:
        if commune is not None and commune not in rt.commune_codes():
            raise InputError(f"--commune {commune!r} is not a known commune code.")
        report = rt.hotspots(as_of_us, days, None if commune is None else {commune}, limit)
    if as_json:
        sys.stdout.write(orjson.dumps(hotspots_dict(report, settings.display_tz), option=orjson.OPT_INDENT_2).decode()
                         + "\n")  # fmt: skip
    else:
        hotspots_tables(out, report, settings.lang, settings.display_tz)


@app.command()
def qr(
    venue_id: str,
    output: Annotated[Path, typer.Option("-o", "--output", help="poster.png or poster.svg")],
    store: StoreOpt = None,
    lang: LangOpt = None,
    zone: Annotated[str, typer.Option("--zone", help="one of the venue's zones: that zone's own QR")] = "",
) -> None:
    """Write the venue's signed QR poster (PNG or SVG) with its name in Vietnamese (--zone: a zone's poster)."""
    from qrtrace.domain.posters import render_poster
    from qrtrace.domain.venue_qr import encode_venue_qr, venue_signing_key

    settings = _settings(store, lang)
    with _runtime(settings) as rt:
        venue = next((v for v in rt.venues() if v.venue_id == venue_id), None)
        if venue is None:
            raise InputError(f"Venue {venue_id} is not registered.")
        communes = {
            c: n
            for c, n in zip(
                *rt.store.query("SELECT commune_code, name_vi FROM qrtrace.communes FINAL").values(),
                strict=True,
            )
        }
        key = venue_signing_key(rt.keyring.venue_signing_seed)
    payload = encode_venue_qr(venue, key, datetime.now(settings.display_tz), zone=zone)
    path = render_poster(
        venue, payload, communes.get(venue.commune_code, venue.commune_code), output, lang=settings.lang, zone=zone
    )
    out.print(f"{t('poster_written', settings.lang)}: {path}")


@app.command()
def demo(
    population: Annotated[int, typer.Option(min=100, max=2_000_000)] = 20_000,
    days: Annotated[int, typer.Option(min=1, max=21)] = 3,
    seed: Annotated[int, typer.Option()] = 2021,
    reidentified_exports: Annotated[
        bool, typer.Option(help="Write the demo trace with identifiers and phones (0600), not pseudonyms.")
    ] = False,
    store: StoreOpt = None,
    lang: LangOpt = None,
    market_zones: Annotated[
        int, typer.Option(min=0, max=6, help="Sections (venue zones) per market (default 3; 0: no zones).")
    ] = 3,
) -> None:
    """The main job: simulate a district, stream it into the embedded store, trace a case, report coverage."""
    from qrtrace.demo import run_demo

    run_demo(_settings(store, lang), population=population, days=days, seed=seed, console=out,
             reidentified=reidentified_exports, market_zones=market_zones)  # fmt: skip


BrokerOpt = Annotated[str | None, typer.Option("--broker", help="Kafka bootstrap servers [env QRTRACE_BROKER].")]


@app.command()
def produce(
    file: Annotated[Path | None, typer.Argument(help="JSON lines to send ('-' = stdin); omit with --simulate.")] = None,
    simulate: Annotated[bool, typer.Option(help="Send a simulated district instead of a file.")] = False,
    population: Annotated[int, typer.Option(min=100)] = 20_000,
    days: Annotated[int, typer.Option(min=1, max=21)] = 3,
    seed: int = 2021,
    start: Annotated[
        str | None, typer.Option(help="First simulated day, e.g. 2021-07-19 (default: DAYS days before today).")
    ] = None,
    broker: BrokerOpt = None,
    store: StoreOpt = None,
) -> None:
    """Validate and pseudonymise at the edge, then send check-ins to Kafka (Avro, keyed by venue)."""
    from qrtrace.distributed import produce_lines, simulated_lines

    settings = _settings(store).with_overrides(broker=broker)
    if simulate == (file is not None):
        raise InputError("Give a FILE of check-ins or --simulate (one of the two).")
    first_day = None
    if start:
        first_day = datetime.fromtimestamp(parse_time(start, "--start", settings) / 1e6, settings.display_tz)
    lines = (simulated_lines(settings, population, days, seed, first_day) if simulate
             else _read_lines(file, settings.batch_size))  # fmt: skip
    report = produce_lines(settings, lines)
    out.print(f"sent {report['sent']:,} check-ins, {report['dead_lettered']:,} dead letters, "
              f"{report['identities']:,} new identities to {settings.broker}")  # fmt: skip


@app.command()
def worker(broker: BrokerOpt = None, store: StoreOpt = None) -> None:
    """Run one stream worker (Faust): Kafka -> processors -> ClickHouse. Run several to share partitions."""
    from qrtrace.distributed import run_worker

    run_worker(_settings(store).with_overrides(broker=broker))


@app.command()
def up(
    state_dir: Annotated[Path, typer.Option(help="Where the servers keep their data.")] = Path(".qrtrace-servers"),
) -> None:
    """Start Kafka (KRaft) and a ClickHouse server on 127.0.0.1; prints the --broker and --store to use."""
    from qrtrace.distributed import servers_up

    broker_addr, store_url = servers_up(state_dir)
    out.print(f"export QRTRACE_BROKER={broker_addr}\nexport QRTRACE_STORE={store_url}")


@app.command()
def down(state_dir: Annotated[Path, typer.Option()] = Path(".qrtrace-servers")) -> None:
    """Stop the servers `qrtrace up` started (by the pids they recorded)."""
    from qrtrace.distributed import servers_down

    servers_down(state_dir)


@app.command()
def retention(store: StoreOpt = None) -> None:
    """Drop day partitions older than the retention period (QRTRACE_RETENTION_DAYS, default 21)."""
    settings = _settings(store)
    with _runtime(settings) as rt:
        dropped = rt.apply_retention()
    out.print(f"dropped {len(dropped)} partitions")


@app.command()
def repair(
    store: StoreOpt = None, lang: LangOpt = None, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Repair a store written before event times were bounded: future check-ins to dead letters, visits
    over their cap shortened, expired partitions dropped, the processor's clock moved back."""
    settings = _settings(store, lang)
    with _runtime(settings) as rt:
        store_report, state_report = rt.repair()
    report = _repair_dict(store_report, state_report, settings)
    if as_json:
        out.print_json(orjson.dumps(report).decode())
        return
    vi = settings.lang == "vi"
    state = report["state"]
    before, after, clock = (_local(w, settings) for w in (state["clock_before"], state["clock_after"], report["clock"]))
    out.print(
        (f"Đã sửa kho: {report['future_checkins']} lượt quét có thời gian ở tương lai chuyển vào hàng đợi lỗi, "
         f"{report['visits_shortened'] + report['visits_reopened']} lượt có mặt được sửa (quá dài, hoặc đóng bởi "
         f"lượt ra ở tương lai); đồng hồ bộ xử lý: {before} → {after} (theo đồng hồ nhận {clock}).")
        if vi else
        (f"Store repaired: {report['future_checkins']} check-ins from the future moved to the dead letters, "
         f"{report['visits_shortened'] + report['visits_reopened']} visits fixed (too long, or closed by a "
         f"check-out from the future); processor clock: {before} → {after} (receiving clock {clock}).")
    )  # fmt: skip


def _local(when: str | None, settings: Settings) -> str:
    """A time of the repair report (ISO 8601, or None) for people: `render.local_time` with the year (a clock
    from the future is the point); an instant datetime cannot hold stays as it was written."""
    if when is None:
        return "–"
    try:
        return render.local_time(when, settings.display_tz, year=True)
    except ValueError:
        return when


def _repair_dict(store_report: StoreRepair, state_report: StateRepair, settings: Settings) -> dict:
    def when(us: int) -> str | None:
        try:
            return render.iso(us, settings.display_tz) if us > -(2**61) else None
        except (OverflowError, ValueError, OSError):
            return str(us)

    return {
        "clock": when(settings.clock_us()),
        "future_checkins": store_report.future_checkins,
        "future_partitions": [list(p) for p in store_report.future_partitions],
        "future_rows_deleted": store_report.future_rows_deleted,
        "visits_reopened": store_report.visits_reopened,
        "visits_shortened": store_report.visits_shortened,
        "state": {
            "clock_before": when(state_report.clock_before_us),
            "clock_after": when(state_report.clock_after_us),
            "scans_forgotten": state_report.scans_forgotten,
            "held_dropped": state_report.held_dropped,
            "open_visits_dropped": state_report.open_visits_dropped,
            "venues": len(state_report.venues),
        },
    }


WorkersOpt = Annotated[int, typer.Option("--workers", min=1, max=64,
                                         help="Processes serving the port (SO_REUSEPORT); more than 1 needs a broker.")]


@app.command("ingest-server")
def serve_scanners(
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port; 0 picks a free one.")] = 8080,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    workers: WorkersOpt = 1,
    broker: BrokerOpt = None,
    store: StoreOpt = None,
) -> None:
    """Serve scanners only: POST /api/checkins (scanner tokens of `qrtrace tokens issue`), /healthz, /metrics.
    The same front door as `qrtrace serve`, without the console and the other routes."""
    from qrtrace.api.server import run

    settings = _settings(store)
    run(settings.with_overrides(broker=broker) if broker else settings, host, port, workers, scanners_only=True)


@app.command()
def serve(
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port; 0 picks a free one.")] = 8000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    workers: WorkersOpt = 1,
    broker: BrokerOpt = None,
    store: StoreOpt = None,
    lang: LangOpt = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs), the scanner door and the web console on the store; prints the
    console's URL."""
    from qrtrace.api.server import run

    settings = _settings(store, lang)
    run(settings.with_overrides(broker=broker) if broker else settings, host, port, workers)


@tokens_app.command("issue")
def tokens_issue(
    role: Annotated[str, typer.Option(help="scanner, venue_owner, commune_officer, district_officer, "
                                           "epidemiologist, admin or health_station")],
    name: Annotated[str, typer.Option(help="Who holds it (written to the audit log as the actor).")],
    venue: Annotated[list[str] | None, typer.Option(help="The venue(s) of a scanner or venue owner.")] = None,
    commune: Annotated[str | None, typer.Option(help="The commune of a commune officer or health station.")] = None,
    district: Annotated[str | None, typer.Option(help="The district of a district officer.")] = None,
    days: Annotated[int, typer.Option(min=1, max=366, help="Days until it expires.")] = 30,
) -> None:
    """Issue an API token; it is printed once and only its scrypt hash is kept."""
    from qrtrace.access import Principal, Role
    from qrtrace.api.tokens import TokenFile
    from qrtrace.sinks.audit import now_us

    try:
        the_role = Role(role)
    except ValueError:
        raise InputError(f"Unknown role {role!r}; use one of {', '.join(r.value for r in Role)}.") from None
    needs = {Role.SCANNER: venue, Role.VENUE_OWNER: venue, Role.COMMUNE_OFFICER: commune,
             Role.DISTRICT_OFFICER: district, Role.HEALTH_STATION: commune}  # fmt: skip
    if the_role in needs and not needs[the_role]:
        flag = {Role.COMMUNE_OFFICER: "--commune", Role.DISTRICT_OFFICER: "--district",
                Role.HEALTH_STATION: "--commune"}.get(the_role, "--venue")  # fmt: skip
        raise InputError(f"A {the_role} token is scoped: give {flag}.")
    if the_role is Role.SCANNER and venue and len(venue) != 1:
        raise InputError("A scanner token is bound to exactly one venue.")
    principal = Principal(name, the_role, venues=frozenset(venue or ()), commune_code=commune,
                          district_code=district)  # fmt: skip
    settings = settings_from_env()
    issued = TokenFile(settings.tokens_path).issue(principal, now_us() + days * 86_400_000_000)
    out.print(f"{issued.token}\n(shown once; id {issued.record.token_id}, expires in {days} days)")


@tokens_app.command("list")
def tokens_list() -> None:
    """The issued tokens (ids, holders, roles, scopes, expiry; never the secrets)."""
    from qrtrace.api.tokens import TokenFile

    for e in TokenFile(settings_from_env().tokens_path).entries():
        scope = ",".join(e["venues"]) or e["commune_code"] or e["district_code"] or "-"
        out.print(f"{e['token_id']}  {e['role']:17} {e['name']:24} {scope}")


@tokens_app.command("revoke")
def tokens_revoke(token_id: str) -> None:
    """Revoke a token by its id (a running server stops accepting it within a second)."""
    from qrtrace.api.tokens import TokenFile

    if not TokenFile(settings_from_env().tokens_path).revoke(token_id):
        raise InputError(f"No token with id {token_id}.")
    out.print(f"revoked {token_id}")


@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[str | None, typer.Option(help="SEQ:HASH of an entry recorded earlier (e.g. the last one a "
                                                    "previous verify printed): it must still be in the chain.")] = None,
    store: StoreOpt = None,
    lang: LangOpt = None,
) -> None:
    """Recompute the audit log's hash chain: one sentence; exit 1 at the first entry that breaks it."""
    from qrtrace.sinks.audit import verify_store

    settings = _settings(store, lang)
    vi = settings.lang == "vi"
    anchor_seq, anchor_hash = _parse_anchor(anchor)
    with _runtime(settings) as rt:
        check = verify_store(rt.store, anchor_seq)
    if check.broken is not None:
        b = check.broken
        at = render.local_time(b.at_us, settings.display_tz, year=True)  # an intruder's entry may claim any year
        where = f"#{b.seq}" if b.seq else ("không số" if vi else "without a number")
        gap = f"#{b.other}" if b.seq == b.other + 1 else f"#{b.other}-#{b.seq - 1}"
        why = {
            "duplicate": ("có hai mục cùng số: một mục bị chèn thêm hoặc ghi hai lần",
                          "a second entry has this number: one was inserted or written twice"),
            "missing": (f"mục {gap} đã bị xoá", f"entry {gap} was removed" if "-" not in gap
                        else f"entries {gap} were removed"),
            "not_following": (f"mục này không nối tiếp mục #{b.other} (prev_hash khác)",
                              f"it does not follow entry #{b.other} (its prev_hash differs)"),
            "changed": ("nội dung đã bị sửa sau khi ghi (băm không khớp)",
                        "its content was changed after it was written (the hash does not match)"),
            "no_hash": ("mục không có băm: được ghi vòng qua nhật ký kiểm toán",
                        "it carries no hash: it was written around the audit log"),
        }[b.kind][0 if vi else 1]  # fmt: skip
        raise QrtraceError(f"Chuỗi băm của nhật ký kiểm toán bị đứt tại mục {where} ({at}, {b.actor}, {b.action}): "
                           f"{why}." if vi else f"The audit log's hash chain is broken at entry {where} ({at}, "
                           f"{b.actor}, {b.action}): {why}.")  # fmt: skip
    if anchor_seq is not None and check.anchor_hash != anchor_hash:
        found = "không còn trong chuỗi" if vi else "is no longer in the chain"
        if check.anchor_hash is not None:
            found = "có băm khác" if vi else "has another hash"
        raise QrtraceError(f"Mục mốc #{anchor_seq} {found}: nhật ký đã bị cắt bớt hoặc viết lại (chuỗi hiện kết thúc "
                           f"ở #{check.head_seq})." if vi else f"The anchor entry #{anchor_seq} {found}: the log was "
                           f"cut short or rewritten (the chain now ends at #{check.head_seq}).")  # fmt: skip
    older = ""
    if check.unchained:
        older = (f"; {check.unchained} mục cũ hơn được ghi trước khi có chuỗi nên không được bảo vệ" if vi else
                 f"; {check.unchained} older entries were written before the chain existed and are not covered")
    out.print(f"Nhật ký kiểm toán nguyên vẹn: {check.entries} mục nối thành một chuỗi băm liền, mục cuối "
              f"#{check.head_seq}:{check.head_hash}{older} (ghi mốc này ở nơi khác để phát hiện việc cắt bớt)."
              if vi else f"The audit log is intact: {check.entries} entries form one unbroken hash chain, the last "
              f"#{check.head_seq}:{check.head_hash}{older} (keep this anchor elsewhere to detect a cut tail).",
              soft_wrap=True)  # fmt: skip


def _parse_anchor(anchor: str | None) -> tuple[int | None, str | None]:
    if anchor is None:
        return None, None
    seq, _, digest = anchor.strip().lstrip("#").partition(":")
    if not seq.isdigit() or int(seq) < 1 or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise InputError(f"--anchor {anchor!r} is not SEQ:HASH (an entry number and its 64-digit hex hash).")
    return int(seq), digest


PurposeOpt = Annotated[str, typer.Option("--purpose", help="Why (written to the audit log).")]


@sites_app.command("publish")
def sites_publish(
    person_id: Annotated[str, typer.Argument(help="The identifier the case checked in with.")],
    from_: Annotated[str, typer.Option("--from", help="Start of the infectious window (ISO 8601).")],
    to: Annotated[str, typer.Option("--to", help="End of the infectious window (ISO 8601).")],
    purpose: PurposeOpt,
    advice: Annotated[str | None, typer.Option(help="Advice shown with each site (default: the standard "
                                                    "advice; Vietnamese).")] = None,
    advice_en: Annotated[str | None, typer.Option(help="The advice in English (default: --advice, or the "
                                                       "standard English advice).")] = None,
    case_id: Annotated[str, typer.Option(help="The case's id, kept with the sites (internal).")] = "",
    as_json: Annotated[bool, typer.Option("--json")] = False,
    store: StoreOpt = None,
    lang: LangOpt = None,
) -> None:
    """Publish a case's exposure sites: each venue visited in [--from, --to], from arrival to departure plus
    the trace grace (QRTRACE grace, 30 min), overlapping windows merged. Audited; idempotent."""
    from qrtrace.sinks.exposure_sites import publish_sites
    from qrtrace.sites_render import sites_table

    settings = _settings(store, lang)
    from_us, to_us = parse_time(from_, "--from", settings), parse_time(to, "--to", settings)
    if to_us < from_us:
        raise InputError("--to is before --from; the infectious window must run forwards.")
    with _runtime(settings) as rt:
        person = rt.pseudonymiser.one(person_id)
        done = publish_sites(rt.store, rt.audit, settings, person, from_us, to_us, purpose, case_id, advice, advice_en)
        rows = _site_rows(rt, settings, [s.site_id for s in done.sites])
    if as_json:
        sys.stdout.write(orjson.dumps({"sites": rows, "written": done.written}, option=orjson.OPT_INDENT_2).decode()
                         + "\n")  # fmt: skip
        return
    sites_table(out, rows, settings.lang, settings.display_tz)
    out.print(t("sites_published", settings.lang).format(n=len(rows), new=done.written, same=len(rows) - done.written))


def _site_rows(rt, settings: Settings, site_ids: list[str]) -> list[dict]:  # type: ignore[no-untyped-def]
    """The listed rows of these sites, in their order."""
    from qrtrace.sinks.exposure_sites import listed_rows

    rows = {r["site_id"]: r for r in listed_rows(rt.store, settings, settings.lang, include_withdrawn=True)}
    return [rows[s] for s in site_ids if s in rows]


@sites_app.command("list")
def sites_list(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    commune: Annotated[str | None, typer.Option(help="Only the sites of this commune (its code).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Withdrawn sites too.")] = False,
    store: StoreOpt = None,
    lang: LangOpt = None,
) -> None:
    """The published exposure sites (active ones; --all adds the withdrawn), with their case ids."""
    from qrtrace.sinks.exposure_sites import listed_rows
    from qrtrace.sites_render import sites_table

    settings = _settings(store, lang)
    with _runtime(settings) as rt:
        rows = listed_rows(rt.store, settings, settings.lang, commune, include_withdrawn=all_)
    if as_json:
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    sites_table(out, rows, settings.lang, settings.display_tz)


@sites_app.command("withdraw")
def sites_withdraw(
    site_ids: Annotated[list[str] | None, typer.Argument(help="The site id(s) (es-...) to withdraw.")] = None,
    purpose: PurposeOpt = "",
    case: Annotated[str | None, typer.Option("--case", help="Withdraw every site of the case who checked in "
                                                            "with this identifier.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    store: StoreOpt = None,
    lang: LangOpt = None,
) -> None:
    """Withdraw exposure sites from the public list (by id, or all of a case with --case); audited."""
    from qrtrace.sinks.exposure_sites import withdraw_sites
    from qrtrace.sites_render import sites_table

    settings = _settings(store, lang)
    if bool(site_ids) == (case is not None):
        raise InputError("Give the SITE_ID(s) to withdraw, or --case PERSON_ID (one of the two).")
    with _runtime(settings) as rt:
        person = rt.pseudonymiser.one(case) if case is not None else None
        done = withdraw_sites(rt.store, rt.audit, purpose, site_ids or (), person)
        rows = _site_rows(rt, settings, [s.site_id for s in done])
    if as_json:
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    sites_table(out, rows, settings.lang, settings.display_tz)
    out.print(t("sites_withdrawn", settings.lang).format(n=len(rows)))


census_app = typer.Typer(no_args_is_help=True, help="Deployment census: the establishments that must deploy QR.")
app.add_typer(census_app, name="census")


def _census_links_checked(rt, file: Path) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """The venue file's establishment links, each checked against the census before anything is registered."""
    from qrtrace.queries.census import check_links, venue_file_links

    links = venue_file_links(file.read_text(encoding="utf-8-sig"))
    check_links(rt.store, links, str(file))
    return links


def _census_link(rt, links: list[tuple[str, str, str]]) -> None:  # type: ignore[no-untyped-def]
    if links:
        from qrtrace.queries.census import link_venues

        link_venues(rt.store, rt.audit, links)


@census_app.command("import")
def census_import(
    file: Path,
    commune: Annotated[str | None, typer.Option(help="Import only this commune's rows (others are refused).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    store: StoreOpt = None,
    lang: LangOpt = None,
) -> None:
    """Import the establishments that must deploy QR from a CSV or XLSX (headers establishment_id,name,category,
    commune_code,address[,venue_id], or Mã cơ sở, Tên cơ sở, Loại hình, Mã xã, Địa chỉ[, Mã địa điểm]). Good
    rows are imported, every refused row is reported with its row, column and reason (exit 1 if any)."""
    from qrtrace.census_render import census_dict, refused_lines
    from qrtrace.domain.census import read_table
    from qrtrace.queries.census import import_census

    settings = _settings(store, lang)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InputError(f"Cannot read the census file {file}: {exc.strerror}.") from exc
    table = read_table(data, file.name)
    with _runtime(settings) as rt:
        result = import_census(rt.store, rt.audit, table, str(file), None if commune is None else {commune})
    if as_json:
        sys.stdout.write(orjson.dumps(census_dict(result), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        for line in refused_lines(result, settings.lang):
            sys.stderr.write(line + "\n")
        out.print(t("census_imported", settings.lang).format(n=len(result.accepted), refused=len(result.refused)))
    if result.refused:
        sys.exit(1)


@census_app.command("list")
def census_list(
    commune: Annotated[str | None, typer.Option(help="One commune's establishments.")] = None,
    unregistered: Annotated[bool, typer.Option("--unregistered", help="Only those not registered yet.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    store: StoreOpt = None,
    lang: LangOpt = None,
) -> None:
    """The census: every establishment with its link to a venue ('' = not registered)."""
    import dataclasses

    from qrtrace.census_render import census_table
    from qrtrace.queries.census import stored_census

    settings = _settings(store, lang)
    with _runtime(settings) as rt:
        rows = stored_census(rt.store)
        registered = {v.venue_id for v in rt.venues()}
    rows = [e for e in rows if (commune is None or e.commune_code == commune)
            and (not unregistered or e.venue_id not in registered)]  # fmt: skip
    if as_json:
        sys.stdout.write(orjson.dumps([dataclasses.asdict(e) for e in rows], option=orjson.OPT_INDENT_2).decode()
                         + "\n")  # fmt: skip
    else:
        census_table(out, rows, settings.lang)


@census_app.command("link")
def census_link(venue_id: str, establishment_id: str, store: StoreOpt = None, lang: LangOpt = None) -> None:
    """Link a registered venue to its census establishment (in the venue's commune); audited."""
    settings = _settings(store, lang)
    with _runtime(settings) as rt:
        venue = next((v for v in rt.venues() if v.venue_id == venue_id), None)
        if venue is None:
            raise InputError(f"Venue {venue_id} is not registered.")
        from qrtrace.queries.census import link_venues

        link_venues(rt.store, rt.audit, [(venue_id, venue.commune_code, establishment_id)])
    out.print(t("census_linked", settings.lang).format(venue=venue_id, establishment=establishment_id))


def _lang() -> str:
    return "en" if os.environ.get("QRTRACE_LANG", "").lower() == "en" else "vi"


def main() -> None:
    """Entry point. Typer runs in its standalone mode, so a mistyped command or option gets its usage message
    and exit code 2 (and --help, Ctrl-C, a closed pipe their usual handling); qrtrace's own errors are one
    sentence and exit 1, anything else one sentence and exit 70, never a traceback (QRTRACE_DEBUG=1 shows it)."""
    try:
        app(standalone_mode=True)
    except QrtraceError as exc:
        _fail(f"{t('error', _lang())}: {exc}", 1)
    except Exception as exc:  # the last line of defence: no tracebacks for users
        if os.environ.get("QRTRACE_DEBUG"):
            raise
        _fail(f"Unexpected failure ({type(exc).__name__}: {exc}); rerun with QRTRACE_DEBUG=1 for details.", 70)


def _register_notify() -> None:
    """`qrtrace notify` and `qrtrace notifications ...` (notify/cli.py)."""
    from qrtrace.notify.cli import register

    register(app)


_register_notify()


def _register_paper() -> None:
    """`qrtrace paper template|import` (qrtrace/paper.py)."""
    from qrtrace.paper import register

    register(app)


def _register_follow_up() -> None:
    """`qrtrace follow-up ...` (qrtrace/follow_up_cli.py)."""
    from qrtrace.follow_up_cli import register

    register(app)


_register_paper()
_register_follow_up()
