"""`qrtrace notify` and `qrtrace notifications status|send`: registered on the main CLI (qrtrace/cli.py)."""

from __future__ import annotations

import sys
from typing import Annotated

import orjson
import typer
from rich.table import Table

from qrtrace import render
from qrtrace.errors import InputError

LABELS: dict[str, tuple[str, str]] = {
    "sending": ("Đang gửi thông báo", "Sending notifications"),
    "messages": ("Thông báo", "Messages"),
    "queued": ("Đang chờ gửi", "Queued"),
    "sent": ("Đã gửi", "Sent"),
    "failed": ("Gửi không được", "Failed"),
    "new": ("Mới đưa vào hàng đợi", "Newly queued"),
    "reason": ("Lý do", "Reason"),
    "attempts": ("Số lần thử", "Attempts"),
    "failures": ("Thông báo gửi không được", "Failed notifications"),
    "skipped": ("Đã gửi trước đó (theo nhật ký gửi)", "Already sent (by the delivery journal)"),
}

notifications_app = typer.Typer(no_args_is_help=True, help="Notifications to contacts: statuses, resume sending.")
GatewayOpt = Annotated[str | None, typer.Option("--gateway", help="webhook:URL | file:PATH | kafka:TOPIC "
                                                                  "[env QRTRACE_NOTIFY_GATEWAY].")]  # fmt: skip
PurposeOpt = Annotated[str, typer.Option("--purpose", help="Why the phone numbers are opened (audit log).")]
TierOpt = Annotated[str, typer.Option("--tier", help="close, casual or all contacts.")]


def lt(key: str, lang: str) -> str:
    vi, en = LABELS[key]
    return en if lang == "en" else vi


def _purpose(text: str) -> str:
    text = " ".join(text.split())
    if len(text) < 3:
        raise InputError("State the --purpose in a few words; it goes to the audit log.")
    return text


def _print_counts(counts: dict[str, int], lang: str, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(counts, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    from qrtrace.cli import out

    shown = [f"{lt(k, lang)}: {counts[k]:,}" for k in ("queued", "sent", "failed") if k in counts]
    out.print(" · ".join(shown))


def notify(
    person_id: Annotated[str, typer.Argument(help="The identifier the case checked in with.")],
    from_: Annotated[str, typer.Option("--from", help="Start of the infectious window (ISO 8601).")],
    to: Annotated[str, typer.Option("--to", help="End of the infectious window (ISO 8601).")],
    purpose: PurposeOpt,
    tier: TierOpt = "all",
    gateway: GatewayOpt = None,
    until: Annotated[str | None, typer.Option(help="F2+ sources start no later than this (default: now).")] = None,
    depth: Annotated[int, typer.Option(min=1, max=6)] = 2,
    grace_minutes: Annotated[float, typer.Option(min=0)] = 30,
    min_overlap_minutes: Annotated[float, typer.Option(min=0)] = 0,
    rule: Annotated[
        str | None,
        typer.Option("--rule", help="Risk rule set: qrtrace-2026 (default), pc-covid-2021, or a JSON file."),
    ] = None,
    sources: Annotated[str, typer.Option("--sources", help="F(k+1) sources: all (default) or close.")] = "all",
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
    store: Annotated[str | None, typer.Option("--store", help="Store directory [env QRTRACE_STORE].")] = None,
    lang: Annotated[str | None, typer.Option("--lang", help="Message and label language: vi or en.")] = None,
) -> None:
    """Trace a case, then send one message to each contact (the chosen tier) through the gateway."""
    from qrtrace.cli import _open_trace_index, _runtime, _settings, parse_time
    from qrtrace.notify.cohort import notify_cohort
    from qrtrace.notify.messages import TIER_CHOICES
    from qrtrace.queries.risk import load_rule
    from qrtrace.queries.trace import SOURCES, CaseQuery, TraceRules
    from qrtrace.sinks.audit import now_us
    from qrtrace.stream_processors.batch import US_PER_MINUTE

    settings = _settings(store, lang)
    purpose = _purpose(purpose)
    if tier not in TIER_CHOICES:
        raise InputError(f"--tier must be close, casual or all, not {tier!r}.")
    if sources not in SOURCES:
        raise InputError(f"--sources is {' or '.join(SOURCES)}, not {sources!r}.")
    from_us, to_us = parse_time(from_, "--from", settings), parse_time(to, "--to", settings)
    if to_us < from_us:
        raise InputError("--to is before --from; the infectious window must run forwards.")
    rules = TraceRules(depth=depth, grace_us=round(grace_minutes * US_PER_MINUTE),
                       min_overlap_us=round(min_overlap_minutes * US_PER_MINUTE),
                       until_us=parse_time(until, "--until", settings) if until else now_us(),
                       risk=load_rule(rule), sources=sources)  # fmt: skip
    with _runtime(settings) as rt:
        _open_trace_index(rt, settings, True)
        person = rt.pseudonymiser.one(person_id)
        query = CaseQuery(f"trace-{person[:12]}", person, from_us, to_us)
        results = rt.trace_pseudonymous([query], rules, purpose, rt.audit)
        with render.progress(settings.lang, as_json) as bar:
            task = bar.add_task(lt("sending", settings.lang), total=None)
            counts = notify_cohort(
                rt,
                settings,
                results,
                tier,
                gateway,
                purpose,
                settings.actor,
                on_progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    _print_counts(counts, settings.lang, as_json)


def status(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    store: Annotated[str | None, typer.Option("--store", help="Store directory [env QRTRACE_STORE].")] = None,
    lang: Annotated[str | None, typer.Option("--lang")] = None,
) -> None:
    """Messages per status (queued, sent, failed), and the failures with their reasons."""
    from qrtrace.cli import _runtime, _settings, out
    from qrtrace.notify.outbox import FAILED, status_counts, statuses

    settings = _settings(store, lang)
    with _runtime(settings) as rt:
        rows = statuses(rt.store)
    failures = [r for r in rows.values() if r.status == FAILED]
    reasons: dict[str, int] = {}
    for r in failures:
        reasons[r.reason] = reasons.get(r.reason, 0) + 1
    counts = status_counts(rows.values())
    if as_json:
        doc = {"counts": counts, "reasons": reasons,
               "failures": [{"message_id": r.message_id, "reason": r.reason, "attempts": r.attempts,
                             "gateway": r.gateway, "updated_at": render.iso(r.updated_at_us, settings.display_tz)}
                            for r in failures]}  # fmt: skip
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    _print_counts(counts, settings.lang, False)
    if reasons:
        table = Table(title=lt("failures", settings.lang))
        table.add_column(lt("reason", settings.lang))
        table.add_column(lt("messages", settings.lang), justify="right")
        for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
            table.add_row(reason, f"{n:,}")
        out.print(table)


def send(
    purpose: PurposeOpt,
    gateway: GatewayOpt = None,
    retry_failed: Annotated[bool, typer.Option(help="Also retry messages that failed (not only queued).")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    store: Annotated[str | None, typer.Option("--store", help="Store directory [env QRTRACE_STORE].")] = None,
    lang: Annotated[str | None, typer.Option("--lang")] = None,
) -> None:
    """Resume: send every queued message of the store through the gateway."""
    from qrtrace.cli import _runtime, _settings
    from qrtrace.notify.cohort import send_queued
    from qrtrace.notify.outbox import status_counts, statuses

    settings = _settings(store, lang)
    purpose = _purpose(purpose)
    with _runtime(settings) as rt:
        with render.progress(settings.lang, as_json) as bar:
            task = bar.add_task(lt("sending", settings.lang), total=None)
            report = send_queued(
                rt,
                settings,
                gateway,
                purpose,
                settings.actor,
                retry_failed,
                on_progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        counts = status_counts(statuses(rt.store).values())
    counts = {**counts, "sent_now": report.sent, "failed_now": report.failed,
              "skipped_journaled": report.skipped_journaled, "replayed": report.replayed}  # fmt: skip
    _print_counts(counts, settings.lang, as_json)


def register(app: typer.Typer) -> None:
    """Add the commands to the main CLI."""
    app.command("notify")(notify)
    notifications_app.command("status")(status)
    notifications_app.command("send")(send)
    app.add_typer(notifications_app, name="notifications")
