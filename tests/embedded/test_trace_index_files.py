"""The trace index through the real CLI: built by the first trace, kept current by each ingest, rebuilt when
its files are damaged, and always tracing as the store reader does (QRTRACE_TRACE_READER=store)."""

from __future__ import annotations

import json
import shlex
import shutil

import pytest

from tests.conftest import SMALL_WAVE
from tests.embedded.conftest import REPLAY_2021

pytestmark = pytest.mark.embedded
BY_STORE = {**REPLAY_2021, "QRTRACE_TRACE_READER": "store"}


def traced(cli, store, env=REPLAY_2021) -> dict:  # type: ignore[no-untyped-def]
    expected = json.loads((SMALL_WAVE / "expected.json").read_text())
    got = json.loads(cli(*shlex.split(expected["command"])[1:], store=store, env=env).stdout)
    return {c["person_id"]: (c["hop"], c["first_exposure"], len(c["exposures"])) for c in got["contacts"]}


def meta(store) -> dict:  # type: ignore[no-untyped-def]
    return json.loads((store / "state" / "trace-index" / "meta.json").read_text())


def test_index_follows_each_ingest_and_equals_the_store_reader(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "store"
    lines = (SMALL_WAVE / "events.jsonl").read_text().splitlines(keepends=True)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("".join(lines[:90]))
    second.write_text("".join(lines[90:]))
    cli("venues", "import", str(SMALL_WAVE / "venues.csv"), store=store, env=REPLAY_2021)
    cli("ingest", str(first), store=store, env=REPLAY_2021)
    early = traced(cli, store)  # the first trace builds the index
    assert early == traced(cli, store, BY_STORE)
    built = meta(store)
    assert built["visits"] > 0 and built["segments"]
    cli("ingest", str(second), store=store, env=REPLAY_2021)  # the ingesting process updates the index
    assert meta(store)["visits"] > built["visits"]
    late = traced(cli, store)
    assert late == traced(cli, store, BY_STORE) and late != early
    expected = json.loads((SMALL_WAVE / "expected.json").read_text())
    assert {p: hop for p, (hop, _, _) in late.items()} == {c["person_id"]: c["hop"] for c in expected["contacts"]}


def test_a_damaged_or_missing_index_is_rebuilt(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "store"
    cli("venues", "import", str(SMALL_WAVE / "venues.csv"), store=store, env=REPLAY_2021)
    cli("ingest", str(SMALL_WAVE / "events.jsonl"), store=store, env=REPLAY_2021)
    want = traced(cli, store, BY_STORE)
    assert traced(cli, store) == want
    index = store / "state" / "trace-index"
    segment = next(p for p in index.iterdir() if p.name.startswith("day-"))
    shutil.rmtree(segment)  # a day's files gone: the next trace rebuilds rather than trusting the rest
    assert traced(cli, store) == want
    (index / "meta.json").write_text("{not json")
    assert traced(cli, store) == want
    shutil.rmtree(index)
    assert traced(cli, store) == want and meta(store)["visits"] > 0


def test_a_repair_makes_every_index_of_the_store_rebuild(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`qrtrace repair` rewrites visits by mutation, which the visit feed never sees: it stamps the store
    anew, so an index made before (here or in any other process) is rebuilt, not trusted."""
    store = tmp_path / "store"
    cli("venues", "import", str(SMALL_WAVE / "venues.csv"), store=store, env=REPLAY_2021)
    cli("ingest", str(SMALL_WAVE / "events.jsonl"), store=store, env=REPLAY_2021)
    before = traced(cli, store)
    stamp = meta(store)["store_id"]
    cli("repair", "--json", store=store, env=REPLAY_2021)
    assert traced(cli, store) == traced(cli, store, BY_STORE) == before
    assert meta(store)["store_id"] != stamp
