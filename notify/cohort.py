"""Acting on a cohort: compose a trace's messages, write them to the outbox, send them. The shell the CLI, the
API and the demo call (`notify_cohort`, `notify_stored_trace`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from qrtrace.errors import InputError
from qrtrace.notify.gateways import open_gateway
from qrtrace.notify.messages import (
    TIER_CHOICES,
    ContactNotice,
    Message,
    Place,
    compose_messages,
    notices_from_results,
)
from qrtrace.notify.outbox import status_counts, statuses, write_outbox
from qrtrace.notify.sender import SendReport, send_pending
from qrtrace.queries.trace import Contact, Exposure
from qrtrace.settings import Settings
from qrtrace.sinks.audit import AuditLog
from qrtrace.sinks.clickhouse_sql import chunked, load_sql
from qrtrace.sinks.store import Store


def places(store: Store, venue_ids: Iterable[str]) -> dict[str, Place]:
    """venue_id -> its name and its commune's name, for the given venues."""
    ids = sorted(set(venue_ids))
    communes = store.query(load_sql("qrtrace.notify", "commune_names"))
    commune_name = dict(zip(communes["commune_code"], communes["name_vi"], strict=True))
    out: dict[str, Place] = {}
    for chunk in chunked(ids):
        rows = store.query(load_sql("qrtrace.notify", "places"), {"venue_ids": chunk})
        for v, name, commune in zip(rows["venue_id"], rows["name"], rows["commune_code"], strict=True):
            out[v] = Place(name or v, commune_name.get(commune, ""))
    return out


def compose(store: Store, settings: Settings, notices: Sequence[ContactNotice], tier: str, lang: str | None
            ) -> list[Message]:  # fmt: skip
    """The messages of the notices under the settings' language, hotline and display zone."""
    if tier not in TIER_CHOICES:
        raise InputError(f"--tier must be close, casual or all, not {tier!r}.")
    found = places(store, (n.venue_id for n in notices))
    return compose_messages(notices, found, tier, lang or settings.lang, settings.health_hotline, settings.display_tz)


def notify_cohort(
    runtime: Any,
    settings: Settings,
    results: Sequence[Any],
    tier: str,
    gateway: str | None,
    purpose: str,
    actor: str,
    *,
    trace_id: str = "",
    lang: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Write the outbox for these TraceResults (one message per case, contact and tier of the chosen tier),
    then send what is queued of it through `gateway` (a spec: webhook:URL | file:PATH | kafka:TOPIC; None:
    the setting QRTRACE_NOTIFY_GATEWAY). Returns the store's counts for these messages (queued, sent, failed)
    and `new` (messages the outbox did not hold before). Re-identification is audited as `actor`."""
    messages = compose(runtime.store, settings, notices_from_results(results), tier, lang)
    return _write_and_send(runtime, settings, messages, gateway or settings.notify_gateway, purpose, actor,
                           trace_id, on_progress)  # fmt: skip


def _write_and_send(runtime: Any, settings: Settings, messages: list[Message], gateway: str | None, purpose: str,
                    actor: str, trace_id: str, on_progress: Callable[[int, int], None] | None,
                    store: Store | None = None) -> dict[str, int]:  # fmt: skip
    store = store or runtime.store
    gw = open_gateway(gateway, settings)  # a bad gateway refuses before anything is written
    try:
        new = write_outbox(store, messages, trace_id)
        ids = [m.message_id for m in messages]
        send_pending(store, runtime.vault, AuditLog(store, actor), settings, gw, purpose, only=ids,
                     on_progress=on_progress)  # fmt: skip
    finally:
        gw.close()
    return {**status_counts(statuses(store, ids).values()), "messages": len(ids), "new": len(new)}


def send_queued(runtime: Any, settings: Settings, gateway: str | None, purpose: str, actor: str,
                retry_failed: bool = False, on_progress: Callable[[int, int], None] | None = None,
                store: Store | None = None) -> SendReport:  # fmt: skip
    """Resume: send every queued message of the store (and the failed ones when `retry_failed`)."""
    store = store or runtime.store
    gw = open_gateway(gateway or settings.notify_gateway, settings)
    try:
        return send_pending(store, runtime.vault, AuditLog(store, actor), settings, gw, purpose,
                            retry_failed=retry_failed, on_progress=on_progress)  # fmt: skip
    finally:
        gw.close()


# -- stored traces (the API's trace jobs) ------------------------------------------------------------------


def stored_notices(headers: Sequence[dict], rows_of_case: Callable[[int], dict[str, np.ndarray]]
                   ) -> list[ContactNotice]:  # fmt: skip
    """The notices of a stored run: per case its header (case pseudonym, case id) and its exposure rows
    (`queries.trace_runs.case_exposures`), rebuilt as trace Contacts so the tier is read as for a live trace."""
    out: list[ContactNotice] = []
    for i, header in enumerate(headers):
        rows = rows_of_case(i)
        case = _Case(header.get("case_id", ""), header["case"])
        tiered = header.get("rule") is not None  # a run stored before tiers: every contact casual
        out += notices_from_results([_Result(case, contacts_from_rows(rows, tiered))])
    return out


def contacts_from_rows(rows: dict[str, np.ndarray], tiered: bool = True) -> list[Contact]:
    """trace Contacts from stored exposure rows ordered by contact (their `risk` codes become the tiers: a
    contact is close when any of its exposures is; a run without a rule has none)."""
    from qrtrace.queries.risk import TIERS

    has_risk = tiered and "risk" in rows
    exposure_risk = has_risk
    if has_risk:
        rows = {**rows, "risk": np.asarray([TIERS[int(r)] for r in rows["risk"]], dtype=object)}
    person = rows["person"]
    contacts: list[Contact] = []
    n = len(person)
    i = 0
    while i < n:
        j = i
        while j < n and person[j] == person[i]:
            j += 1
        exposures = [Exposure(rows["venue_id"][k], int(rows["start_us"][k]), int(rows["end_us"][k]),
                              int(rows["overlap_us"][k]), rows["source_person"][k], int(rows["source_hop"][k]),
                              **({"risk": rows["risk"][k]} if exposure_risk else {}))
                     for k in range(i, j)]  # fmt: skip
        extra = {"risk": "close" if any(rows["risk"][k] == "close" for k in range(i, j)) else "casual"} if has_risk \
            else {}  # fmt: skip
        contacts.append(Contact(person[i], int(rows["hop"][i]), int(rows["first_exposure_us"][i]), exposures,
                                **extra))  # fmt: skip
        i = j
    return contacts


@dataclasses.dataclass(frozen=True)
class _Case:
    case_id: str
    person: str


@dataclasses.dataclass(frozen=True)
class _Result:
    case: _Case
    contacts: list[Contact]
