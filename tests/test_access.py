"""Roles, scopes and tokens (qrtrace/access.py): every role against every action, and no scope leaks."""

from __future__ import annotations

import pytest

from qrtrace.access import (
    PERMISSIONS,
    AccessDenied,
    Action,
    FailureWindow,
    Geography,
    InvalidToken,
    Principal,
    Role,
    Scope,
    TokenBook,
    authorize,
    issue_token,
    visible_communes,
)

GEO = Geography(
    district_of_commune={"C1": "D1", "C2": "D1", "C3": "D2"},
    commune_of_venue={"V1": "C1", "V2": "C2", "V3": "C3"},
)
PEOPLE = {
    Role.SCANNER: Principal("scanner-1", Role.SCANNER, venues=frozenset({"V1"})),
    Role.VENUE_OWNER: Principal("owner-1", Role.VENUE_OWNER, venues=frozenset({"V1"})),
    Role.COMMUNE_OFFICER: Principal("commune-1", Role.COMMUNE_OFFICER, commune_code="C1"),
    Role.DISTRICT_OFFICER: Principal("district-1", Role.DISTRICT_OFFICER, district_code="D1"),
    Role.EPIDEMIOLOGIST: Principal("epi-1", Role.EPIDEMIOLOGIST),
    Role.ADMIN: Principal("admin-1", Role.ADMIN),
    Role.HEALTH_STATION: Principal("station-1", Role.HEALTH_STATION, commune_code="C1"),
}
HOME = Scope(venue_id="V1")  # inside every scoped principal's area above


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(Action))
def test_every_role_against_every_action_in_its_own_area(role: Role, action: Action) -> None:
    if action in PERMISSIONS[role]:
        authorize(PEOPLE[role], action, HOME, GEO)
    else:
        with pytest.raises(AccessDenied, match="may not"):
            authorize(PEOPLE[role], action, HOME, GEO)


def test_reidentification_is_for_epidemiologists_only() -> None:
    assert [r for r in Role if Action.REIDENTIFY in PERMISSIONS[r]] == [Role.EPIDEMIOLOGIST]
    assert [r for r in Role if Action.READ_AUDIT in PERMISSIONS[r]] == [Role.ADMIN]


@pytest.mark.parametrize(
    ("role", "action", "scope"),
    [
        (Role.SCANNER, Action.INGEST_CHECKINS, Scope(venue_id="V2")),  # a check-in for another venue
        (Role.SCANNER, Action.INGEST_CHECKINS, Scope()),
        (Role.VENUE_OWNER, Action.ISSUE_VENUE_QR, Scope(venue_id="V3")),
        (Role.COMMUNE_OFFICER, Action.READ_COVERAGE, Scope(commune_code="C2")),  # the next commune
        (Role.COMMUNE_OFFICER, Action.ISSUE_VENUE_QR, Scope(venue_id="V2")),
        (Role.COMMUNE_OFFICER, Action.READ_COVERAGE, Scope()),  # "everything" is not its area
        (Role.DISTRICT_OFFICER, Action.READ_COVERAGE, Scope(commune_code="C3")),  # another district
        (Role.DISTRICT_OFFICER, Action.REGISTER_VENUE, Scope(venue_id="V3")),
        (Role.DISTRICT_OFFICER, Action.READ_COVERAGE, Scope(venue_id="V-unknown")),
        (Role.HEALTH_STATION, Action.READ_FOLLOW_UP, Scope(commune_code="C2")),  # the next commune
        (Role.HEALTH_STATION, Action.UPDATE_FOLLOW_UP, Scope(commune_code="C3")),
        (Role.HEALTH_STATION, Action.EXPORT_FOLLOW_UP, Scope()),  # "everything" is not its area
        (Role.HEALTH_STATION, Action.READ_FOLLOW_UP, Scope(venue_id="V2")),
    ],
)
def test_scoped_roles_cannot_reach_outside_their_area(role: Role, action: Action, scope: Scope) -> None:
    with pytest.raises(AccessDenied):
        authorize(PEOPLE[role], action, scope, GEO)


def test_district_officer_reaches_every_commune_of_its_district() -> None:
    for commune in ("C1", "C2"):
        authorize(PEOPLE[Role.DISTRICT_OFFICER], Action.READ_COVERAGE, Scope(commune_code=commune), GEO)
    assert visible_communes(PEOPLE[Role.DISTRICT_OFFICER], GEO) == {"C1", "C2"}
    assert visible_communes(PEOPLE[Role.COMMUNE_OFFICER], GEO) == {"C1"}
    assert visible_communes(PEOPLE[Role.EPIDEMIOLOGIST], GEO) is None
    assert visible_communes(PEOPLE[Role.SCANNER], GEO) == frozenset()


def test_a_token_verifies_only_as_issued_and_until_it_expires() -> None:
    token, record = issue_token(PEOPLE[Role.EPIDEMIOLOGIST], expires_at_us=1_000)
    book = TokenBook([record])
    assert book.verify(token, now_us=999) == PEOPLE[Role.EPIDEMIOLOGIST]
    assert token.split("_", 2)[2] not in repr(record)  # only the hash is kept
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for bad in ("", "Bearer", "qrt_x", forged, "qrt_" + "0" * 16 + "_secret"):
        with pytest.raises(InvalidToken):
            book.verify(bad, now_us=999)
    with pytest.raises(InvalidToken, match="expired"):
        book.verify(token, now_us=1_000)


@pytest.mark.parametrize("role", [Role.COMMUNE_OFFICER, Role.DISTRICT_OFFICER])
def test_a_venue_elsewhere_and_no_venue_get_the_same_sentence(role: Role) -> None:
    """Issue 10 item 8: the refusal names only the caller's own area, never where a venue is."""
    elsewhere = "V2" if role is Role.COMMUNE_OFFICER else "V3"  # a registered venue outside the caller's area
    sentences = {}
    for venue in (elsewhere, "V-unknown"):
        with pytest.raises(AccessDenied) as refused:
            authorize(PEOPLE[role], Action.ISSUE_VENUE_QR, Scope(venue_id=venue), GEO)
        sentences[venue] = str(refused.value).replace(venue, "<venue>")
    assert sentences[elsewhere] == sentences["V-unknown"]
    assert "C2" not in sentences[elsewhere] and "C3" not in sentences[elsewhere] and "D2" not in sentences[elsewhere]


def test_an_unknown_token_id_costs_the_same_scrypt_run_as_a_wrong_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10 item 9: no timing difference between an unknown id and a known id with a wrong secret; the
    work is counted (one scrypt run each), not timed."""
    import qrtrace.access as access

    token, record = issue_token(PEOPLE[Role.ADMIN], expires_at_us=10**18)
    book = TokenBook([record])
    runs: list[bytes] = []
    real = access._digest

    def counted(secret: str, salt: bytes) -> bytes:
        runs.append(salt)
        return real(secret, salt)

    monkeypatch.setattr(access, "_digest", counted)
    secret = token.split("_", 2)[2]
    for bad in (f"qrt_{record.token_id}_{secret[:-1]}x", f"qrt_{'0' * 16}_{secret}"):
        runs.clear()
        with pytest.raises(InvalidToken, match="not valid"):
            book.verify(bad, now_us=1)
        assert len(runs) == 1 and len(runs[0]) == len(record.salt)  # one scrypt run, same parameters


def test_failed_attempts_are_limited_in_a_sliding_window() -> None:
    window = FailureWindow(limit=3, window_s=60, max_keys=2)
    for at in (0.0, 10.0):
        window.fail("a", at)
    assert window.retry_after("a", 11.0) is None  # two failures: may try again
    window.fail("a", 20.0)
    assert window.retry_after("a", 21.0) == pytest.approx(39.0)  # the first failure leaves the window at 60 s
    assert window.retry_after("b", 21.0) is None  # another client is not affected
    assert window.retry_after("a", 60.5) is None  # the window has moved past the first failure
    window.fail("b", 30.0)
    window.fail("c", 31.0)  # a third key: the one whose last failure is oldest is forgotten
    assert set(window._failures) == {"b", "c"}


def test_a_health_station_is_bound_to_its_commune_and_only_follows_up() -> None:
    station = PEOPLE[Role.HEALTH_STATION]
    assert visible_communes(station, GEO) == {"C1"}
    authorize(station, Action.UPDATE_FOLLOW_UP, Scope(commune_code="C1"), GEO)
    assert PERMISSIONS[Role.HEALTH_STATION] == {Action.READ_FOLLOW_UP, Action.UPDATE_FOLLOW_UP,
                                                Action.EXPORT_FOLLOW_UP, Action.CALL_FOLLOW_UP}  # fmt: skip
    # Opening a record's phone is for those who call: not admins, not the officers who report upward.
    assert [r for r in Role if Action.CALL_FOLLOW_UP in PERMISSIONS[r]] == [Role.EPIDEMIOLOGIST,
                                                                            Role.HEALTH_STATION]  # fmt: skip
    assert Action.UPDATE_FOLLOW_UP not in PERMISSIONS[Role.ADMIN]  # admins never change a record
    assert [r for r in Role if Action.UPDATE_FOLLOW_UP in PERMISSIONS[r]] == [Role.EPIDEMIOLOGIST,
                                                                              Role.HEALTH_STATION]  # fmt: skip
