"""The follow-up core: transitions, history entries, records from stored exposure rows, export layouts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qrtrace.errors import InputError
from qrtrace.queries import follow_up as fu

DAY = fu.US_PER_DAY
T0 = 1_800_000_000_000_000


def _record(**kw: object) -> fu.FollowUp:
    base = {"follow_up_id": fu.follow_up_id("C1", "p1"), "case_id": "C1", "person": "p1", "hop": 1, "risk": "close",
            "venue_id": "V1", "commune_code": "100", "exposed_from_us": T0, "exposed_to_us": T0 + 3_600_000_000}
    return fu.FollowUp(**(base | kw))  # type: ignore[arg-type]


def test_the_id_is_one_per_case_and_contact() -> None:
    assert fu.follow_up_id("C1", "p1") == fu.follow_up_id("C1", "p1")
    assert len({fu.follow_up_id("C1", "p1"), fu.follow_up_id("C2", "p1"), fu.follow_up_id("C1", "p2")}) == 3


def test_quarantine_takes_its_dates_and_the_history_says_from_what_to_what() -> None:
    r, changes = fu.apply_update(_record(), fu.Update("quarantined", T0 + DAY, None, "ở nhà"), "station", T0 + 2 * DAY)
    assert (r.status, r.quarantine_from_us, r.quarantine_until_us) == ("quarantined", T0 + DAY, T0 + 15 * DAY)
    assert r.updated_by == "station" and r.notes == "ở nhà"
    assert {(c.field, c.from_value, c.to_value) for c in changes} == {
        ("status", "not_reached", "quarantined"), ("quarantine_from_us", "0", str(T0 + DAY)),
        ("quarantine_until_us", "0", str(T0 + 15 * DAY)), ("notes", "", "ở nhà")}  # fmt: skip
    assert {c.actor for c in changes} == {"station"} and {c.at_us for c in changes} == {T0 + 2 * DAY}


def test_refusals_are_sentences() -> None:
    with pytest.raises(InputError, match="Unknown status"):
        fu.apply_update(_record(), fu.Update("cured"), "a", T0)
    with pytest.raises(InputError, match="already"):
        fu.apply_update(_record(), fu.Update("not_reached"), "a", T0)
    with pytest.raises(InputError, match="nothing to change"):
        fu.apply_update(_record(), fu.Update(None, note="  "), "a", T0)
    with pytest.raises(InputError, match="ends before"):
        fu.apply_update(_record(), fu.Update("quarantined", T0, T0 - 1), "a", T0)
    with pytest.raises(InputError, match="final"):
        fu.apply_update(_record(status="tested_positive"), fu.Update("reached"), "a", T0)


def test_a_positive_contact_may_still_get_a_note() -> None:
    r, changes = fu.apply_update(_record(status="tested_positive"), fu.Update(None, note="nhập viện"), "a", T0)
    assert r.status == "tested_positive" and [c.field for c in changes] == ["notes"]


def test_the_infectious_window_defaults_to_two_days_before_the_test() -> None:
    assert fu.infectious_window(T0, None, None) == (T0 - 2 * DAY, T0)
    assert fu.infectious_window(T0, T0 - DAY, T0 + DAY) == (T0 - DAY, T0 + DAY)
    with pytest.raises(InputError):
        fu.infectious_window(T0, T0, T0 - 1)


@given(st.lists(st.sampled_from(fu.STATUSES), max_size=12))
def test_any_sequence_of_changes_keeps_the_versions_rising_and_positive_final(steps: list[str]) -> None:
    r = _record()
    at = T0
    for status in steps:
        at += 1
        before = r
        try:
            r, changes = fu.apply_update(r, fu.Update(status), "a", at)
        except InputError:
            assert before.status == status or before.status in fu.FINAL
            continue
        assert before.status not in fu.FINAL and r.status == status and r.version > before.version
        assert changes[0].field == "status" and (changes[0].from_value, changes[0].to_value) == (before.status, status)


def test_records_from_rows_take_the_first_exposures_venue_and_the_span() -> None:
    rows = {"person": np.array(["p1", "p1", "p2"], dtype=object), "hop": np.array([1, 1, 2]),
            "venue_id": np.array(["V2", "V1", "V3"], dtype=object), "start_us": np.array([T0 + 10, T0, T0 + 5]),
            "end_us": np.array([T0 + 50, T0 + 20, T0 + 9]), "risk": np.array([0, 1, 0])}  # fmt: skip
    out = {r.person: r for r in fu.records_from_rows("C1", "tr-1", rows, {"V1": "100", "V2": "200"}, T0)}
    assert (out["p1"].venue_id, out["p1"].commune_code, out["p1"].risk) == ("V1", "100", "close")
    assert (out["p1"].exposed_from_us, out["p1"].exposed_to_us) == (T0, T0 + 50)
    assert (out["p2"].commune_code, out["p2"].risk, out["p2"].hop) == ("", "casual", 2)


def _records_by_loop(case_id: str, rows: dict, communes: dict) -> list[tuple]:
    """The reference: one pass over the rows in order, the first row of the earliest start wins."""
    people: dict[str, dict] = {}
    for k in range(len(rows["person"])):
        p, start, end = rows["person"][k], int(rows["start_us"][k]), int(rows["end_us"][k])
        seen = people.setdefault(p, {"hop": int(rows["hop"][k]), "venue": rows["venue_id"][k], "first": start,
                                     "from": start, "to": end, "close": False})  # fmt: skip
        if start < seen["first"]:
            seen["first"], seen["venue"] = start, rows["venue_id"][k]
        seen["from"], seen["to"] = min(seen["from"], start), max(seen["to"], end)
        seen["close"] = seen["close"] or int(rows["risk"][k]) == 1
    return [(fu.follow_up_id(case_id, p), p, s["hop"], "close" if s["close"] else "casual", s["venue"],
             communes.get(s["venue"], ""), s["from"], s["to"]) for p, s in people.items()]  # fmt: skip


@given(st.lists(st.tuples(st.sampled_from(["p1", "p2", "p3", "p4"]), st.sampled_from(["V1", "V2", "V3"]),
                          st.integers(0, 4), st.integers(0, 6), st.integers(0, 1)), max_size=40))  # fmt: skip
def test_records_from_rows_equal_a_row_by_row_reading(exposures: list[tuple]) -> None:
    """Dense: four people, three venues, five start times, so ties on the earliest start are common."""
    hop_of = {"p1": 1, "p2": 1, "p3": 2, "p4": 2}
    rows = {"person": np.array([e[0] for e in exposures], dtype=object),
            "hop": np.array([hop_of[e[0]] for e in exposures], dtype=np.int64),
            "venue_id": np.array([e[1] for e in exposures], dtype=object),
            "start_us": np.array([T0 + e[2] for e in exposures], dtype=np.int64),
            "end_us": np.array([T0 + e[2] + e[3] for e in exposures], dtype=np.int64),
            "risk": np.array([e[4] for e in exposures], dtype=np.int8)}  # fmt: skip
    communes = {"V1": "100", "V2": "200"}
    got = [(r.follow_up_id, r.person, r.hop, r.risk, r.venue_id, r.commune_code, r.exposed_from_us, r.exposed_to_us)
           for r in fu.records_from_rows("C1", "tr-1", rows, communes, T0)]  # fmt: skip
    assert got == _records_by_loop("C1", rows, communes)


def test_export_layouts_are_the_documented_ones() -> None:
    r = _record(status="quarantined", quarantine_from_us=T0, quarantine_until_us=T0 + 14 * DAY, notes="=cmd")
    people = {"p1": fu.ExportPerson("0912345678", "0912345678")}

    def day(us: int) -> str:
        return str(us // DAY)

    sormas = fu.sormas_rows([r], people, {"V1": "Chợ"}, {"100": "Xã A"}, day)
    assert sormas[0] == ["Contact"] * 17
    assert sormas[1] == ["caseIdExternalSystem", "disease", "reportDateTime", "person.firstName", "person.lastName",
                         "person.phone", "lastContactDate", "contactCategory", "contactProximityDetails",
                         "followUpStatus", "followUpComment", "quarantine", "quarantineFrom", "quarantineTo",
                         "description", "externalID", "community"]  # fmt: skip
    row = dict(zip(sormas[1], sormas[2], strict=True))
    assert row["contactCategory"] == "HIGH_RISK" and row["quarantine"] == "HOME" and row["person.phone"] == "0912345678"
    assert row["caseIdExternalSystem"] == "C1" and row["disease"] == "CORONAVIRUS" and row["person.firstName"] == ""
    godata = fu.godata_rows([r], {}, {"V1": "Chợ"}, day)
    assert godata[0] == ["visualId", "firstName", "lastName", "gender", "dateOfReporting", "dateOfLastContact",
                         "riskLevel", "riskReason", "followUp.status", "addresses[].phoneNumber",
                         "addresses[].locationId", "relationship.contactDate", "relationship.certaintyLevelId",
                         "relationship.exposureTypeId", "relationship.comment"]  # fmt: skip
    g = dict(zip(godata[0], godata[1], strict=True))
    assert g["lastName"] == "p1" and g["riskLevel"] == "LNG_REFERENCE_DATA_CATEGORY_RISK_LEVEL_3_HIGH"
    district = fu.district_rows([r], people, {"V1": "Chợ"}, {"100": "Xã A"}, day, day)
    assert len(fu.DISTRICT_HEADERS) == len(district[0]) and fu.DISTRICT_HEADERS[:3] == ("STT", "Mã theo dõi",
                                                                                          "Họ tên / định danh")
    assert district[0][:5] == [1, r.follow_up_id, "0912345678", "0912345678", "Xã A"]
    assert district[0][7:10] == ["F1", "cao", "Đang cách ly"]


def test_exported_files_never_run_a_formula() -> None:
    import io
    from datetime import UTC

    from openpyxl import load_workbook

    from qrtrace.sinks.follow_up import export_file

    r = _record(notes="=HYPERLINK(\"x\")")
    people = {"p1": fu.ExportPerson("+84912", "")}
    body, _, ext = export_file("district-xlsx", [r], people, {"V1": "@venue"}, {}, UTC)
    cells = list(load_workbook(io.BytesIO(body)).active.iter_rows(values_only=True))[1]
    assert ext == "xlsx" and "'+84912" in cells and "'@venue" in cells and "'=HYPERLINK(\"x\")" in cells
    csv_body, _, _ = export_file("godata", [r], people, {"V1": "@venue"}, {}, UTC)
    assert "'+84912" in csv_body.decode("utf-8-sig")
