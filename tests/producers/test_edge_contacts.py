"""Contact details (issue 10, item 4), the pure part: merged, never overwritten by an empty value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import orjson
from hypothesis import given
from hypothesis import strategies as st

from qrtrace.identity import (
    ContactEntry,
    Keyring,
    Vault,
    contact_timeline,
    current_contact,
    merge_contacts,
    phone_of,
)
from qrtrace.producers.edge import IDENTITY_CONTEXT, Edge, seal_identities

VAULT = Vault(Keyring.generate().vault_key)


def test_a_check_in_never_carries_a_contact() -> None:
    """The edge seals the identifier only: a citizen id's empty contact can no longer replace a phone."""
    rows = seal_identities(VAULT, {"p-phone": "0912 345 678", "p-cccd": "008221072523", "p-qr": "QR-0f45ad05"})
    assert rows.contact_sealed == ["", "", ""]
    assert [VAULT.open(i, IDENTITY_CONTEXT) for i in rows.identifier_sealed] == ["0912345678", "008221072523",
                                                                                 "QR0F45AD05"]  # fmt: skip


def test_an_admitted_batch_has_identities_without_contacts() -> None:
    from qrtrace.identity import Pseudonymiser

    edge = Edge(Pseudonymiser(b"k" * 32), VAULT, {"V1"})
    at = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")  # inside any accepted window
    line = orjson.dumps({"scan_id": "s1", "venue_id": "V1", "person_id": "0912345678", "direction": "in",
                         "event_time": at, "mode": "venue_qr", "scanner_id": "S"})  # fmt: skip
    ids = edge.admit([line]).identities
    assert len(ids) == 1 and ids.contact_sealed == [""]


def test_phone_of_only_for_phone_numbers() -> None:
    assert phone_of("+84 912-345-678") == "0912345678"
    assert phone_of("0912345678") == "0912345678"
    assert phone_of("008221072523") == ""  # a 12-digit citizen id
    assert phone_of("QR-0f45ad05d006b55a") == ""
    assert phone_of("1234567890") == ""  # ten digits but no Vietnamese phone prefix


def test_merge_keeps_known_numbers_against_empty_values_and_reports_changes() -> None:
    current = {"a": "0911111111", "b": "0922222222", "c": "0933333333"}
    incoming = {"a": "", "b": "+84 922 222 222", "c": "0944444444", "d": "0955555555", "e": "  "}
    changes = merge_contacts(current, incoming)
    assert changes.added == {"d": "0955555555"}  # e gave nothing: nothing to add
    assert changes.changed == {"c": ("0933333333", "0944444444")}  # a kept, b the same number spelled otherwise
    assert changes.rows() == {"d": "0955555555", "c": "0944444444"}


def _entry(contact: str, at: int, source: str = "directory") -> ContactEntry:
    return ContactEntry(contact, at, source)


def test_timeline_keeps_every_change_once_and_the_latest_is_called() -> None:
    entries = [_entry("0922222222", 30), _entry("0911111111", 10), _entry("0911111111", 20, "identity_vault"),
               _entry("0911111111", 40), _entry("", 50)]  # fmt: skip
    timeline = contact_timeline(entries)
    assert [(e.contact, e.seen_at_us) for e in timeline] == [("0911111111", 10), ("0922222222", 30),
                                                             ("0911111111", 40)]  # fmt: skip
    assert current_contact("008221072523", timeline) == "0911111111"
    assert current_contact("0988888888", []) == "0988888888"  # never given one: the phone they check in with
    assert current_contact("008221072523", []) == ""  # legitimately uncallable: no phone ever given


@given(st.lists(st.dictionaries(st.sampled_from("abc"), st.sampled_from(["", "0911111111", "0922222222"]))))
def test_after_any_imports_the_contact_is_the_last_non_empty_one_given(imports: list[dict[str, str]]) -> None:
    """Applying directory imports one after another as register_contacts does: no empty value ever wins."""
    entries: dict[str, list[ContactEntry]] = {}
    for at, incoming in enumerate(imports):
        current = {p: contact_timeline(e)[-1].contact for p, e in entries.items()}
        for person, contact in merge_contacts(current, incoming).rows().items():
            entries.setdefault(person, []).append(_entry(contact, at))
    for person in "abc":
        given_values = [i[person] for i in imports if i.get(person)]
        timeline = contact_timeline(entries.get(person, []))
        assert current_contact("QR-X", timeline) == (given_values[-1] if given_values else "")
        changes = sum(1 for x, y in pairwise(given_values) if x != y)
        assert len(timeline) == (changes + 1 if given_values else 0)  # one entry per number given in a row
