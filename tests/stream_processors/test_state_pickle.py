"""Venue states are pickled after every batch that touches them: columns for the pairing state, and the
form written before the columns still loads (a running deployment's state file and changelog)."""

from __future__ import annotations

import pickle

from qrtrace.stream_processors.state import KeyState, VenueState


def _state() -> VenueState:
    vs = VenueState(seen={"s1": 10, "s2": 20}, present={1: 2}, arrivals={1: 1}, version=3, clock_us=99)
    vs.keys = {"p1": KeyState(None, 5), "p2": KeyState(7, 8, "s2", True)}
    return vs


def test_a_venue_state_round_trips_through_pickle() -> None:
    vs = _state()
    back = pickle.loads(pickle.dumps(vs, protocol=pickle.HIGHEST_PROTOCOL))
    assert (back.seen, back.keys, back.present, back.arrivals, back.version, back.clock_us) == (
        vs.seen, vs.keys, vs.present, vs.arrivals, vs.version, vs.clock_us)  # fmt: skip
    assert len(back.held) == len(vs.held) == 0


def test_the_form_written_before_the_columns_still_loads() -> None:
    vs = _state()
    old = (None, {name: getattr(vs, name) for name in VenueState.__slots__})  # what copyreg wrote for slots
    back = VenueState.__new__(VenueState)
    back.__setstate__(old)
    assert (back.seen, back.keys, back.version, back.clock_us) == (vs.seen, vs.keys, 3, 99)
