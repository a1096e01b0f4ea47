"""Venue states are pickled after every step that touches them, the key histories as columns."""

from __future__ import annotations

import pickle

from qrtrace.stream_processors.state import KeyHistory, VenueState


def test_a_venue_state_round_trips_through_pickle() -> None:
    vs = VenueState(present={1: 2}, arrivals={1: 1}, version=3, clock_us=99, horizon_us=7, pruned_at_us=5)
    vs.keys = {"p1": KeyHistory([(5, "s1", True, "Khu A")], cut_us=2, revision=4),
               "p2": KeyHistory([], cut_us=9, open_start=7, open_scan="s2", expired_start=1, revision=1,
                                open_zone="Khu B")}  # fmt: skip
    back = pickle.loads(pickle.dumps(vs, protocol=pickle.HIGHEST_PROTOCOL))
    assert back == vs


def test_a_state_saved_before_zones_loads_with_every_zone_empty() -> None:
    """The embedded state file and the Faust changelog keep states pickled by the previous layout."""
    old = {"clock_us": 99, "horizon_us": 7, "present": {}, "arrivals": {}, "version": 3, "pruned_at_us": 5,
           "key_columns": (["p1"], [[(5, "s1", True)]], [2], [5], ["s1"], [None], [4])}  # fmt: skip
    vs = VenueState.__new__(VenueState)
    vs.__setstate__(old)
    assert vs.keys == {"p1": KeyHistory([(5, "s1", True, "")], 2, 5, "s1", None, 4, "")}
