"""Builds a store for the notification tests (run as a subprocess: one chDB engine per process).

`python -m tests.embedded.notify_store small-wave STORE`: the worked example, every person given a phone in
the contact directory except the ones listed in NO_PHONE (STORE `env`: the store QRTRACE_STORE names).
`... simulated STORE POPULATION`: a simulated district, everyone with a phone in the contact directory.
`... inspect STORE`: the outbox's ids and the audit log's notify entries. Prints one JSON line."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from qrtrace.domain.venues import read_venues_csv
from qrtrace.embedded import EmbeddedRuntime
from qrtrace.settings import settings_from_env
from tests.conftest import SMALL_WAVE

NO_PHONE = ("02315975045",)  # one contact of the worked example without a phone: "failed: no phone number"


def phone_for(person_id: str) -> str:
    return "09" + person_id[-8:]


def small_wave(store: str) -> dict:
    settings = settings_from_env().with_overrides(store=None if store == "env" else store)
    lines = (SMALL_WAVE / "events.jsonl").read_bytes().splitlines()
    people = sorted({orjson.loads(line)["person_id"] for line in lines} - set(NO_PHONE))
    with EmbeddedRuntime(settings) as rt:
        rt.register_venues(read_venues_csv(SMALL_WAVE / "venues.csv", rt.commune_codes()))
        rt.register_contacts(people, [phone_for(p) for p in people])
        rt.ingest([lines], source="test")
    return {
        "person_id": "09381480988",
        "from": "2021-07-20T00:00:00+07:00",
        "to": "2021-07-21T00:00:00+07:00",
        "until": "2021-07-25T00:00:00+07:00",
    }


def simulated(store: str, population: int) -> dict:
    from qrtrace.producers.simulator import SimulationConfig, build_district, checkin_batches
    from qrtrace.queries.trace import CaseQuery, TraceRules

    settings = settings_from_env().with_overrides(store=store)
    start = (datetime.now(UTC) - timedelta(days=2)).replace(hour=17, minute=0, second=0, microsecond=0)
    district = build_district(SimulationConfig(seed=7, start=start, days=1, population=population))
    end = start + timedelta(days=1)
    with EmbeddedRuntime(settings) as rt:
        rt.register_venues(district.venues)
        rt.register_contacts([p.person_id for p in district.people], [p.phone for p in district.people])
        rt.ingest(checkin_batches(district, settings.batch_size), source="simulator")
        # the person with the most contacts among a sample: enough messages for a run to be killed mid-way
        rules = TraceRules(depth=1, until_us=round(end.timestamp() * 1e6))
        f, t = round(start.timestamp() * 1e6), round(end.timestamp() * 1e6)
        sample = [p.person_id for p in district.people[: min(200, population)]]
        queries = [CaseQuery(p, rt.pseudonymiser.one(p), f, t) for p in sample]
        results = rt.trace_pseudonymous(queries, rules, "test setup", rt.audit)
        best = max(results, key=lambda r: len(r.contacts))
    return {
        "person_id": best.case.case_id,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "until": end.isoformat(),
        "contacts": len(best.contacts),
    }


def inspect(store: str) -> dict:
    """The outbox's message ids and the audit log's notify entries (read in a process of its own)."""
    settings = settings_from_env().with_overrides(store=store)
    with EmbeddedRuntime(settings) as rt:
        ids = rt.store.query("SELECT DISTINCT message_id FROM qrtrace.notification_outbox")["message_id"]
        audit = rt.store.query("SELECT actor, action, case_id, purpose, detail FROM qrtrace.audit_log "
                               "WHERE action = 'notify' ORDER BY seq")  # fmt: skip
    entries = [dict(zip(audit, row, strict=True)) for row in zip(*audit.values(), strict=True)]
    return {"ids": sorted(ids), "audit": [{**e, "detail": orjson.loads(e["detail"])} for e in entries]}


if __name__ == "__main__":
    kind, store = sys.argv[1], sys.argv[2]
    if store != "env":  # "env": the store QRTRACE_STORE names (a ClickHouse server in the distributed tier)
        Path(store).mkdir(parents=True, exist_ok=True)
    if kind == "inspect":
        doc = inspect(store)
    else:
        doc = small_wave(store) if kind == "small-wave" else simulated(store, int(sys.argv[3]))
    sys.stdout.write(orjson.dumps(doc).decode() + "\n")
