"""Coalescing (issue 11, item 2), the pure part: one edge pass over many requests, each its own verdict."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qrtrace.identity import Keyring, Pseudonymiser, Vault
from qrtrace.producers.coalesce import split_admitted
from qrtrace.producers.edge import Edge

KEYS = Keyring.generate()
AT = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")


def _edge() -> Edge:
    return Edge(Pseudonymiser(KEYS.pseudonym_key), Vault(KEYS.vault_key), {"V1", "V2"})


def _line(kind: str, n: int) -> bytes:
    """A check-in that passes ('ok'), names an unknown venue, lacks a field, or is not JSON at all."""
    if kind == "garbage":
        return b"{not json " + str(n).encode()
    record = {"scan_id": f"s{n}", "venue_id": "V1" if n % 2 else "V2", "person_id": f"09123{n:05d}",
              "direction": "in", "event_time": AT, "mode": "venue_qr", "scanner_id": "S"}  # fmt: skip
    if kind == "unknown_venue":
        record["venue_id"] = "NOPE"
    if kind == "missing":
        del record["person_id"]
    return orjson.dumps(record)


def _verdict(checkins, letters) -> tuple[list[str], Counter]:
    return list(checkins.scan_id), Counter(d.reason for d in letters)


requests_st = st.lists(
    st.lists(st.sampled_from(["ok", "ok", "unknown_venue", "missing", "garbage"]), max_size=6), min_size=1, max_size=8
)


@settings(max_examples=60, deadline=None)
@given(requests_st)
def test_a_coalesced_pass_answers_each_request_as_if_it_came_alone(requests: list[list[str]]) -> None:
    """The split of one pass gives every request the check-ins and dead letters its own pass would give."""
    n = 0
    batches = []
    for kinds in requests:
        batches.append([_line(k, n + i) for i, k in enumerate(kinds)])
        n += len(kinds)
    combined = _edge().admit([line for b in batches for line in b])
    shares = split_admitted(combined, [len(b) for b in batches])
    assert len(shares) == len(batches)
    for batch, share in zip(batches, shares, strict=True):
        alone = _edge().admit(batch)
        assert _verdict(share.checkins, share.dead_letters) == _verdict(alone.checkins, alone.dead_letters)
        assert [d.dl_id for d in share.dead_letters] == [d.dl_id for d in alone.dead_letters]
        assert share.received == len(batch)
    assert sum(len(s.checkins) for s in shares) == len(combined.checkins)


def test_plain_cases() -> None:
    """Bad first, bad last, an empty request in the middle: each dead letter stays with its own request."""
    batches = [[_line("garbage", 0)], [], [_line("ok", 1), _line("ok", 2)], [_line("ok", 3), _line("missing", 4)]]
    shares = split_admitted(_edge().admit([line for b in batches for line in b]), [len(b) for b in batches])
    assert [len(s.checkins) for s in shares] == [0, 0, 2, 1]
    assert [len(s.dead_letters) for s in shares] == [1, 0, 0, 1]
    assert list(shares[2].checkins.scan_id) == ["s1", "s2"] and list(shares[3].checkins.scan_id) == ["s3"]


def test_sizes_that_do_not_match_the_pass_are_refused() -> None:
    """A split with the wrong boundaries would give one request another's counts: refused, never guessed."""
    admitted = _edge().admit([_line("ok", 1), _line("ok", 2)])
    with pytest.raises(ValueError):
        split_admitted(admitted, [1])
