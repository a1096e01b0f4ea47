"""The API's pure core (no server, no store): coverage by area, trace documents with and without
identities, call-list rows, exports, metrics parsing and the token file."""

from __future__ import annotations

import io
import os
import stat
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import MetricsHandler

from qrtrace.access import InvalidToken, Principal, Role
from qrtrace.api import exports, views
from qrtrace.api.metrics_watch import MetricsWatcher
from qrtrace.api.tokens import TokenFile
from qrtrace.domain.categories import load_categories
from qrtrace.queries.coverage import CommuneCoverage, CoverageCell, CoverageReport, SilentVenue


def _report(scans: dict[tuple[str, str], int], registered: dict[tuple[str, str], int]) -> CoverageReport:
    cells = [CoverageCell(c, k, registered.get((c, k), 0), int(scans.get((c, k), 0) > 0), scans.get((c, k), 0), 0)
             for c in ("C1", "C2", "C3") for k in ("market", "school")]  # fmt: skip
    communes = [CommuneCoverage(c, f"Xã {c}", 0, 0, sum(v for (cc, _), v in scans.items() if cc == c), 7)
                for c in ("C1", "C2", "C3")]  # fmt: skip
    silent = [SilentVenue("V-C3", "Chợ C3", "market", "C3")]
    return CoverageReport(0, 0, "vi", cells, communes, [], [], silent)


def test_coverage_view_narrows_to_the_area_and_flags_zero_scans() -> None:
    registered = {("C1", "market"): 2, ("C2", "school"): 1, ("C3", "market"): 1}
    day = _report({("C1", "market"): 5}, registered)
    week = _report({("C1", "market"): 9, ("C2", "school"): 3}, registered)
    view = views.coverage_view(day, week, frozenset({"C2", "C3"}), "vi")
    assert {c["commune_code"] for c in view["cells"]} == {"C2", "C3"}
    assert [c["commune_code"] for c in view["zero_scan_communes"]] == ["C2", "C3"]
    c2 = next(c for c in view["communes"] if c["commune_code"] == "C2")
    got = (c2["registered"], c2["active_24h"], c2["active_7d"], c2["scans_7d"], c2["active_share_7d"])
    assert got == (1, 0, 1, 3, 1.0)
    assert [v["venue_id"] for v in view["silent_venues"]] == ["V-C3"]
    everyone = views.coverage_view(day, week, None, "en")
    assert sum(o["registered"] for o in everyone["offices"]) == 4
    market = next(c for c in everyone["cells"] if c["category"] == "market")
    assert market["category_name"] == load_categories()["market"].name_en
    rows = exports.coverage_rows(everyone, "vi")
    assert rows[-1][2] == "TỔNG CỘNG" and rows[-1][5] == 4 and rows[-1][9] == 5
    assert exports.coverage_csv(everyone, "en").startswith("\ufeffNo.,Commune code".encode())
    sheet = load_workbook(io.BytesIO(exports.coverage_xlsx(everyone, "vi", "Huyện Thử", views.VIETNAM))).active
    assert sheet["A2"].value == "Địa bàn: Huyện Thử"


pseudonym = st.text("0123456789abcdef", min_size=32, max_size=32)
exposure = st.fixed_dictionaries({"venue_id": st.sampled_from(["V1", "V2"]), "start": st.just("2021-07-20T08:00"),
                                  "end": st.just("2021-07-20T09:00"), "overlap_minutes": st.floats(0, 60),
                                  "source_person_id": pseudonym, "source_hop": st.integers(0, 2)})  # fmt: skip
contact = st.fixed_dictionaries({"person_id": pseudonym, "hop": st.integers(1, 3),
                                 "first_exposure": st.just("2021-07-20T08:00"),
                                 "exposures": st.lists(exposure, min_size=1, max_size=3)})  # fmt: skip
doc = st.fixed_dictionaries({"case": pseudonym, "case_id": st.sampled_from(["A", "B"]),
                             "contacts": st.lists(contact, max_size=6)})  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(docs=st.lists(doc, min_size=1, max_size=3), reveal=st.booleans())
def test_identities_appear_only_when_given(docs: list[dict], reveal: bool) -> None:
    names = {p: views.Person(f"id-{p[:6]}", f"09{p[:8]}") for p in views.pseudonyms_in(docs)}
    shown = views.show_people(docs, names if reveal else None)
    rows = views.call_list_rows(shown)
    assert len(rows) == sum(len(c["exposures"]) for d in docs for c in d["contacts"])
    flat = {v for r in rows for v in (r[1], r[3], r[10])}
    if reveal:
        assert all(v.startswith("id-") for v in flat) and all(r[4].startswith("09") for r in rows)
    else:
        assert flat <= views.pseudonyms_in(docs) and all(r[4] == "" for r in rows)
        assert all(d["reidentified"] is False for d in shown)
    assert [r[2] for r in rows if r[0] == "A"] == sorted(r[2] for r in rows if r[0] == "A")


def _registry() -> tuple[CollectorRegistry, Counter]:
    reg = CollectorRegistry()
    events = Counter("qrtrace_events_total", "events", ["stage", "outcome"], registry=reg)
    Counter("qrtrace_dead_letters_total", "dl", ["reason"], registry=reg).labels("late").inc(3)
    Gauge("qrtrace_consumer_lag", "lag", ["topic", "partition"], registry=reg).labels("checkins", "0").set(12)
    e2e = Histogram("qrtrace_end_to_end_seconds", "e2e", buckets=(0.1, 0.5, 1, 5), registry=reg)
    for v in (0.05, 0.2, 0.3, 0.4, 2.0):
        e2e.observe(v)
    events.labels("pairing", "ok").inc(100)
    return reg, events


def test_metrics_are_read_from_a_real_exposition() -> None:
    reg, _ = _registry()
    parsed = views.parse_metrics(generate_latest(reg).decode())
    assert parsed["events"] == {"pairing": 100.0} and parsed["dead_letters"] == {"late": 3.0}
    assert parsed["consumer_lag"] == 12.0
    assert views.histogram_quantile(parsed["e2e_buckets"], 0.5) == 0.5
    assert views.histogram_quantile(parsed["e2e_buckets"], 0.95) == 5.0
    assert views.histogram_quantile({}, 0.5) is None
    assert views.rates({"a": 50}, {"a": 10}, 2.0) == {"a": 0.0}  # a restarted worker counts from zero


def test_the_watcher_scrapes_a_live_metrics_endpoint_and_says_when_none_answers() -> None:
    reg, events = _registry()
    server = ThreadingHTTPServer(("127.0.0.1", 0), MetricsHandler.factory(reg))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ticks = iter([10.0, 12.0])
    watcher = MetricsWatcher(clock=lambda: next(ticks))
    url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    try:
        first = watcher.scrape([url])
        events.labels("pairing", "ok").inc(500)
        second = watcher.scrape([url])
    finally:
        server.shutdown()
        server.server_close()
    assert first["state"] == "running" and first["targets"][0]["events_per_second"] == {}
    assert second["targets"][0]["events_per_second"] == {"pairing": 250.0}
    assert second["targets"][0]["consumer_lag"] == 12.0
    gone = MetricsWatcher().scrape([url])
    assert gone["state"] == "unreachable" and "did not answer" in gone["targets"][0]["reason"]
    assert MetricsWatcher().scrape([])["state"] == "not_running"


def test_the_token_file_keeps_hashes_only(tmp_path: Path) -> None:
    book = TokenFile(tmp_path / "tokens.json")
    who = Principal("Lan", Role.COMMUNE_OFFICER, commune_code="02536")
    issued = book.issue(who, expires_at_us=2**62, label="demo")
    kept = (tmp_path / "tokens.json").read_text()
    assert issued.token.split("_", 2)[2] not in kept
    assert stat.S_IMODE(os.stat(tmp_path / "tokens.json").st_mode) == 0o600
    assert book.book().verify(issued.token, now_us=0) == who
    other = book.issue(Principal("Minh", Role.ADMIN), expires_at_us=2**62)
    book.drop_label("demo")
    with pytest.raises(InvalidToken):
        book.book().verify(issued.token, now_us=0)
    assert book.revoke(other.record.token_id) and not book.entries()
