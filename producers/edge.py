"""The edge: raw scanner records in, pseudonymised check-ins and redacted dead letters out.

Nothing that leaves this module carries a raw identifier: person ids become keyed-HMAC pseudonyms,
declarations and refused payloads are sealed in the vault, and new identities get a sealed vault row
so that allowed roles can re-identify a contact later.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import orjson

from qrtrace.identity import Pseudonymiser, Vault, normalise_identifier
from qrtrace.settings import Settings
from qrtrace.stream_processors.batch import CheckinBatch, DeadLetter
from qrtrace.stream_processors.validate import EventTimeWindow, Rejection, Validator, parse_lines

IDENTITY_CONTEXT = "identity"
CONTACT_CONTEXT = "contact"
DECLARATION_CONTEXT = "declaration"
DEAD_LETTER_CONTEXT = "dead-letter"
# Only these contract fields are kept readable in a dead letter; anything else may hold personal data.
# Pseudonyms whose vault row a long-lived edge remembers writing (~100 bytes each); past this it starts over.
MAX_REMEMBERED_IDENTITIES = 1_000_000
_SAFE_FIELDS = ("scan_id", "venue_id", "direction", "event_time", "mode", "scanner_id", "zone")


@dataclass(frozen=True)
class IdentityRows:
    """Vault rows for identities first seen in this batch (`contact_sealed`: see `seal_identities`)."""

    person: list[str]
    identifier_sealed: list[str]
    contact_sealed: list[str]

    def __len__(self) -> int:
        return len(self.person)


@dataclass(frozen=True)
class AdmittedBatch:
    checkins: CheckinBatch
    dead_letters: list[DeadLetter]
    identities: IdentityRows
    received: int
    rejected_at: tuple[int, ...] = ()  # each dead letter's index in the lines (a coalesced pass splits by it)


class Edge:
    """Validates and pseudonymises batches of raw records. Holds keys, never writes anywhere."""

    def __init__(
        self,
        pseudonymiser: Pseudonymiser,
        vault: Vault,
        known_venues: Collection[str] | Mapping[str, Collection[str]],
        window: EventTimeWindow | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        """`window` and `clock` (UTC microseconds) bound event times around the time of receipt; every
        receiver in production passes both (tests of the pure parts may leave them out). `known_venues` may map
        each venue to its zones (`Validator`)."""
        self._pseudonymiser = pseudonymiser
        self._vault = vault
        self._validator = Validator(known_venues, window)
        self._window = window
        self._clock = clock
        self._sealed: set[str] = set()  # pseudonyms whose vault row this process already wrote
        self._seq = 0

    def use_venues(self, known_venues: Collection[str] | Mapping[str, Collection[str]]) -> None:
        """Check later batches against these venues (a long-lived edge's registry, refreshed while it runs)."""
        self._validator = Validator(known_venues, self._window)

    def admit(self, lines: Sequence[bytes]) -> AdmittedBatch:
        """Parse, validate and pseudonymise one batch of JSON lines."""
        received_at = self._clock() if self._clock is not None else None
        valid, rejected = self._validator.validate(parse_lines(lines), received_at)
        persons = self._pseudonymiser.many(valid.person_id.tolist())
        n = len(valid)
        seq = np.arange(self._seq, self._seq + n, dtype=np.int64)
        self._seq += len(lines)
        declarations = [self._vault.seal(d, DECLARATION_CONTEXT) if d else "" for d in valid.declaration.tolist()]
        batch = CheckinBatch(
            scan_id=valid.scan_id,
            venue_id=valid.venue_id,
            person=np.array(persons, dtype=object),
            is_in=valid.is_in,
            event_time_us=valid.event_time_us,
            offset_minutes=valid.offset_minutes,
            mode=valid.mode,
            scanner_id=valid.scanner_id,
            declaration_sealed=np.array(declarations, dtype=object),
            seq=seq,
            zone=valid.zone,
        )
        letters = [self._redact(lines[r.index], r) for r in rejected]
        return AdmittedBatch(batch, letters, self._new_identities(valid.person_id.tolist(), persons), len(lines),
                             tuple(r.index for r in rejected))  # fmt: skip

    def _new_identities(self, raw_ids: list[str], persons: list[str]) -> IdentityRows:
        fresh: dict[str, str] = {}
        for raw, person in zip(raw_ids, persons, strict=True):
            if person not in self._sealed and person not in fresh:
                fresh[person] = raw
        if len(self._sealed) > MAX_REMEMBERED_IDENTITIES:  # a long-lived edge: bounded memory, rows are idempotent
            self._sealed.clear()
        self._sealed.update(fresh)
        return seal_identities(self._vault, fresh)

    def _redact(self, line: bytes, rejection: Rejection) -> DeadLetter:
        """Dead letter without raw identifiers: personal fields pseudonymised or dropped, original sealed."""
        dl_id = hashlib.blake2b(line, digest_size=16).hexdigest()
        redacted: dict[str, object] = {}
        record = rejection.record
        if record is not None:
            redacted = {k: record[k] for k in _SAFE_FIELDS if k in record}
            if isinstance(record.get("person_id"), str):
                redacted["person"] = self._pseudonymiser.one(record["person_id"])
        sealed = self._vault.seal(line.decode("utf-8", "replace"), DEAD_LETTER_CONTEXT)
        return DeadLetter(dl_id, rejection.reason, rejection.detail, orjson.dumps(redacted).decode(), sealed)


def seal_identities(vault: Vault, raw_by_person: dict[str, str]) -> IdentityRows:
    """Sealed vault rows: the identifier each person checks in with, and no contact.

    A check-in carries no contact details, so it never writes one: contacts come only from a contact
    directory (`EmbeddedRuntime.register_contacts`, appended to `contact_details`), and a person who checks
    in with a phone number is called on it at re-identification (`identity.current_contact`). Writing an
    empty contact here used to replace a registered phone (issue 10, item 4). `contact_sealed` stays in the
    rows because the identities topic's schema (v1) carries it; it is always "" from this edge.
    """
    persons = list(raw_by_person)
    return IdentityRows(
        persons,
        [vault.seal(normalise_identifier(raw_by_person[p]), IDENTITY_CONTEXT) for p in persons],
        [""] * len(persons),
    )


def receiving_edge(
    settings: Settings,
    pseudonymiser: Pseudonymiser,
    vault: Vault,
    known_venues: Collection[str] | Mapping[str, Collection[str]],
) -> Edge:
    """The edge every receiver runs (CLI, API, HTTP endpoint, producer): event times bounded around the
    settings' receiving clock, the retention period back and a few minutes ahead."""
    return Edge(pseudonymiser, vault, known_venues, receiving_window(settings), settings.clock_us)


def receiving_window(settings: Settings) -> EventTimeWindow:
    """The event times a receiver accepts: the retention period back, `max_future_minutes` ahead."""
    return EventTimeWindow(settings.max_event_age_us, settings.max_future_us)
