"""Contact details through the real runtime and chDB (issue 10, item 4): a check-in with a citizen id or a
personal QR no longer erases the phone the contact directory gave; a changed number keeps its history and
is audited; a store written by an earlier version keeps its phone numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from qrtrace.domain.venues import read_venues_csv
from qrtrace.embedded import EmbeddedRuntime
from qrtrace.producers.edge import CONTACT_CONTEXT, IDENTITY_CONTEXT
from qrtrace.queries.reidentify import contact_history, reidentify
from qrtrace.queries.trace import TraceRules
from qrtrace.settings import Settings
from tests.conftest import SMALL_WAVE

pytestmark = pytest.mark.embedded

CASE = "0911000001"  # checks in with a phone number
CCCD = "008221072523"  # a citizen id (12 digits)
PERSONAL_QR = "QR-0f45ad05d006b55a"
PHONES = {CASE: "0911000001", CCCD: "0912000001", PERSONAL_QR: "+84 912 000 002"}
M = 60_000_000


def _settings(tmp_path: Path) -> Settings:
    return Settings(store=str(tmp_path / "store"), key_file=tmp_path / "keys.json", actor="tester")


def _line(scan: str, venue: str, person: str, direction: str, at: datetime) -> bytes:
    return orjson.dumps({"scan_id": scan, "venue_id": venue, "person_id": person, "direction": direction,
                         "event_time": at.isoformat(timespec="seconds"), "mode": "personal_qr",
                         "scanner_id": "S-1"})  # fmt: skip


def _visits(venue: str, start: datetime, tag: str) -> list[bytes]:
    """The three people at one venue together for an hour (times near now: inside any accepted window)."""
    lines = []
    for n, person in enumerate((CASE, CCCD, PERSONAL_QR)):
        lines.append(_line(f"{tag}-in-{n}", venue, person, "in", start + timedelta(minutes=n)))
        lines.append(_line(f"{tag}-out-{n}", venue, person, "out", start + timedelta(minutes=60 + n)))
    return lines


def test_a_check_in_with_a_citizen_id_or_personal_qr_keeps_the_registered_phone(tmp_path: Path) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=4)
    venue = read_venues_csv(SMALL_WAVE / "venues.csv")[0]
    with EmbeddedRuntime(_settings(tmp_path)) as rt:
        rt.register_venues([venue])
        rt.register_contacts(list(PHONES), list(PHONES.values()))
        report = rt.ingest([_visits(venue.venue_id, start, "a")], source="test")
        assert report.accepted == 6
        # A second ingest is a new edge: every identity is written again, as a scanner could force at will.
        rt.ingest([_visits(venue.venue_id, start + timedelta(hours=2), "b")], source="test")
        rt.store.execute("OPTIMIZE TABLE qrtrace.identity_vault FINAL")  # replaced rows are gone for good
        frm = round(start.timestamp() * 1e6)
        result, ids = rt.trace(CASE, frm, frm + 4 * 60 * M, TraceRules(depth=1, until_us=frm + 5 * 60 * M),
                               purpose="test", case_id="C1")  # fmt: skip
        by_identifier = {ids[c.person].identifier: ids[c.person].contact for c in result.contacts}
        assert by_identifier == {CCCD: "0912000001", "QR0F45AD05D006B55A": "0912000002"}
        found = reidentify(rt.store, rt.vault, rt.audit, rt.pseudonymiser.many(list(PHONES)), "C1", "test")
        assert [i.contact for i in found.values()] == ["0911000001", "0912000001", "0912000002"]


def test_a_changed_number_keeps_its_history_and_is_audited(tmp_path: Path) -> None:
    with EmbeddedRuntime(_settings(tmp_path)) as rt:
        person = rt.pseudonymiser.one(CCCD)
        first = rt.register_contacts([CCCD], ["0912000001"])
        assert first.added == {person: "0912000001"} and not first.changed
        assert not rt.register_contacts([CCCD], ["091 200 0001"]).rows()  # the same number: no change, no row
        changed = rt.register_contacts([CCCD], ["0913000003"], purpose="the person gave a new number")
        assert changed.changed == {person: ("0912000001", "0913000003")}
        assert not rt.register_contacts([CCCD], [""]).rows()  # an empty value never replaces a number
        assert reidentify(rt.store, rt.vault, rt.audit, [person], "", "test")[person].contact == "0913000003"
        history = contact_history(rt.store, rt.vault, rt.audit, [person], "", "review")[person]
        assert [(e.contact, e.source) for e in history] == [("0912000001", "directory"), ("0913000003", "directory")]
        assert rt.store.query("SELECT count() AS n FROM qrtrace.contact_details")["n"] == [2]
        audit = rt.store.query(
            "SELECT action, subject, purpose, actor, detail FROM qrtrace.audit_log WHERE action LIKE 'contact%'"
            " ORDER BY at_us"
        )
    assert audit["action"] == ["contact_change", "contact_history"]
    assert audit["subject"][0] == person and audit["purpose"][0] == "the person gave a new number"
    assert audit["actor"] == ["tester", "tester"]
    assert not [d for d in audit["detail"] if "091" in d]  # the log names the pseudonym, never a number


def test_a_store_of_an_earlier_version_keeps_its_phone_numbers(tmp_path: Path) -> None:
    """Earlier versions kept the contact in identity_vault, where a later check-in's empty row replaced it;
    opening the store copies what is still on disk into contact_details, so nothing is lost by upgrading."""
    settings = _settings(tmp_path)
    with EmbeddedRuntime(settings) as rt:
        person = rt.pseudonymiser.one(CCCD)
        ident = rt.vault.seal(CCCD, IDENTITY_CONTEXT)
        # What the earlier register_contacts and then an ingest wrote, in two parts (not merged yet).
        for contact, at in ((rt.vault.seal("0912000001", CONTACT_CONTEXT), 1), ("", 2)):
            rt.store.insert("qrtrace.identity_vault", {"person": [person], "identifier_sealed": [ident],
                                                       "contact_sealed": [contact], "sealed_at_us": [at]})  # fmt: skip
        rt.store.execute("TRUNCATE TABLE qrtrace.contact_details")  # as before the table existed
    with EmbeddedRuntime(settings) as rt:
        found = reidentify(rt.store, rt.vault, rt.audit, [person], "", "test")[person]
        assert (found.identifier, found.contact) == (CCCD, "0912000001")
        history = contact_history(rt.store, rt.vault, rt.audit, [person], "", "test")[person]
        assert [(e.contact, e.seen_at_us, e.source) for e in history] == [("0912000001", 1, "identity_vault")]
    with EmbeddedRuntime(settings) as rt:  # opened again: copied once, not again
        assert rt.store.query("SELECT count() AS n FROM qrtrace.contact_details")["n"] == [1]
