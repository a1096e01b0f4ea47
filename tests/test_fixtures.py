"""The vendored worked example must stay identical to the shared original when that is present."""

from __future__ import annotations

import pytest

from tests.conftest import SHARED, SMALL_WAVE


def test_small_wave_copy_matches_shared_original() -> None:
    original = SHARED / "examples" / "small-wave"
    if not original.exists():
        pytest.fail(f"{original} is missing; the project expects ../shared next to its root (see README).")
    for name in ("venues.csv", "events.jsonl", "expected.json", "README.md"):
        assert (SMALL_WAVE / name).read_bytes() == (original / name).read_bytes(), name


def test_packaged_reference_data_matches_shared_domain() -> None:
    from tests.conftest import REPO

    for name in ("venue_categories.csv", "son_duong_communes.csv"):
        assert (REPO / "qrtrace" / "data" / name).read_bytes() == (SHARED / "domain" / name).read_bytes(), name
