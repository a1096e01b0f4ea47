"""Contact follow-up (issue 15, DESIGN.md "After the trace"): the pure core. No I/O.

Each contact of a stored trace becomes one follow-up record, assigned to the commune of the venue where the
contact was first exposed; the commune's health station calls the person and records what happened.

Decisions:
- Key: one record per (case_id, contact pseudonym); `follow_up_id` is a digest of the two, so storing the same
  trace again, or tracing the same case again, creates nothing twice. A person reached by two cases has two
  records: SORMAS and Go.Data both model a contact as a relation to one case (the exports below carry it), and
  each case gives its own exposure place, time and tier that the health station reads out on the phone.
- Statuses are free transitions between not_reached, reached, quarantined and tested_negative (a call is
  repeated, a quarantine ends in a test, a negative test can be followed by quarantine again), except that
  tested_positive is final: the contact has become a case (F0) and is followed as one, not as a contact.
  Setting the status it already has is refused (nothing to change); a note alone is always accepted.
- Dates: quarantined takes quarantine_from (the date given, default the day of the change) and quarantine_until
  (default from + 14 days); tested_negative / tested_positive take tested_on (default the day of the change).
- tested_positive declares a case: default infectious window from tested_on - 2 days to tested_on (the usual
  "two days before the test" rule for contacts without symptoms), editable in the request.
- Every change is a list of history entries (field, from, to), written append-only and audited by the shell.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from qrtrace.errors import InputError

US_PER_DAY = 86_400_000_000
NOT_REACHED, REACHED, QUARANTINED = "not_reached", "reached", "quarantined"
TESTED_NEGATIVE, TESTED_POSITIVE = "tested_negative", "tested_positive"
STATUSES = (NOT_REACHED, REACHED, QUARANTINED, TESTED_NEGATIVE, TESTED_POSITIVE)
FINAL = frozenset({TESTED_POSITIVE})
STATUS_LABELS: dict[str, tuple[str, str]] = {
    NOT_REACHED: ("Chưa liên lạc được", "Not reached"),
    REACHED: ("Đã liên lạc", "Reached"),
    QUARANTINED: ("Đang cách ly", "In quarantine"),
    TESTED_NEGATIVE: ("Xét nghiệm âm tính", "Tested negative"),
    TESTED_POSITIVE: ("Xét nghiệm dương tính", "Tested positive"),
}
QUARANTINE_DAYS = 14
INFECTIOUS_DAYS_BEFORE_TEST = 2
MAX_NOTE = 1000


def status_label(status: str, lang: str = "vi") -> str:
    """The status as the console and the spreadsheets show it."""
    vi, en = STATUS_LABELS[status]
    return en if lang == "en" else vi


def follow_up_id(case_id: str, person: str) -> str:
    """The record's id: a digest of (case, contact), the same however often the case is traced."""
    return "fu-" + hashlib.sha256(f"{case_id}\x1f{person}".encode()).hexdigest()[:20]


@dataclass(frozen=True)
class FollowUp:
    """One contact of one case, followed by the health station of `commune_code`. Times are UTC µs (0: none)."""

    follow_up_id: str
    case_id: str
    person: str
    hop: int
    risk: str  # close | casual
    venue_id: str
    commune_code: str
    exposed_from_us: int
    exposed_to_us: int
    trace_id: str = ""
    status: str = NOT_REACHED
    quarantine_from_us: int = 0
    quarantine_until_us: int = 0
    tested_on_us: int = 0
    new_case_id: str = ""
    notes: str = ""
    created_at_us: int = 0
    updated_at_us: int = 0
    updated_by: str = ""
    version: int = 0


@dataclass(frozen=True)
class Change:
    """One entry of a record's history: who changed which field from what to what, when."""

    follow_up_id: str
    commune_code: str
    exposed_from_us: int
    at_us: int
    actor: str
    field: str
    from_value: str
    to_value: str


@dataclass(frozen=True)
class Update:
    """What a caller asks to change: a status (with its date, and for quarantine its end) and/or a note."""

    status: str | None = None
    date_us: int | None = None
    until_us: int | None = None
    note: str | None = None


def check_status(status: str) -> str:
    """The status, or InputError naming the valid ones."""
    if status not in STATUSES:
        raise InputError(f"Unknown status {status!r}; use one of {', '.join(STATUSES)}.")
    return status


def apply_update(record: FollowUp, update: Update, actor: str, at_us: int) -> tuple[FollowUp, list[Change]]:
    """The record after `update` and the history entries it makes; InputError for a change not allowed."""
    if update.status is None and not (update.note or "").strip():
        raise InputError("Give a status or a note; there is nothing to change.")
    changes: dict[str, tuple[object, object]] = {}
    new = record
    if update.status is not None:
        status = check_status(update.status)
        if record.status in FINAL:
            raise InputError(f"The follow-up {record.follow_up_id} is {record.status}, which is final: the contact "
                             f"is case {record.new_case_id or '(declared)'} now.")  # fmt: skip
        if status == record.status:
            raise InputError(f"The follow-up {record.follow_up_id} is already {status}.")
        day = update.date_us if update.date_us is not None else at_us
        fields: dict[str, object] = {"status": status}
        if status == QUARANTINED:
            until = update.until_us if update.until_us is not None else day + QUARANTINE_DAYS * US_PER_DAY
            if until < day:
                raise InputError("The quarantine ends before it starts; 'until' must be after the date.")
            fields |= {"quarantine_from_us": day, "quarantine_until_us": until}
        elif status in (TESTED_NEGATIVE, TESTED_POSITIVE):
            fields["tested_on_us"] = day
        for name, value in fields.items():
            if getattr(record, name) != value:
                changes[name] = (getattr(record, name), value)
        new = dataclasses.replace(new, **fields)
    if update.note is not None and update.note.strip():
        note = " ".join(update.note.split())
        if len(note) > MAX_NOTE:
            raise InputError(f"A note holds at most {MAX_NOTE} characters, not {len(note)}.")
        notes = f"{record.notes}\n{note}" if record.notes else note
        changes["notes"] = (record.notes, notes)
        new = dataclasses.replace(new, notes=notes)
    new = dataclasses.replace(new, updated_at_us=at_us, updated_by=actor, version=max(at_us, record.version + 1))
    history = [Change(record.follow_up_id, record.commune_code, record.exposed_from_us, at_us, actor, name,
                      _text(a), _text(b)) for name, (a, b) in changes.items()]  # fmt: skip
    return new, history


def declared(record: FollowUp, new_case_id: str, actor: str, at_us: int) -> tuple[FollowUp, Change]:
    """The record once its positive contact is declared as case `new_case_id` (and the history entry)."""
    change = Change(record.follow_up_id, record.commune_code, record.exposed_from_us, at_us, actor, "new_case_id",
                    record.new_case_id, new_case_id)  # fmt: skip
    return dataclasses.replace(record, new_case_id=new_case_id, version=max(at_us, record.version + 1)), change


def infectious_window(tested_on_us: int, from_us: int | None, to_us: int | None) -> tuple[int, int]:
    """The new case's window: as given, else tested_on - 2 days .. tested_on; InputError if it runs backwards."""
    start = from_us if from_us is not None else tested_on_us - INFECTIOUS_DAYS_BEFORE_TEST * US_PER_DAY
    end = to_us if to_us is not None else tested_on_us
    if end < start:
        raise InputError("The infectious window ends before it starts; 'to' must be after 'from'.")
    return start, end


def default_case_id(record: FollowUp) -> str:
    """The id a positive contact's case gets unless the caller names one."""
    return f"F0-{record.follow_up_id[3:15].upper()}"


def _text(value: object) -> str:
    return "" if value is None else str(value)


# -- records from a stored trace ----------------------------------------------------------------------------


def records_from_rows(case_id: str, trace_id: str, rows: Mapping[str, np.ndarray],
                      commune_of_venue: Mapping[str, str], created_at_us: int) -> list[FollowUp]:  # fmt: skip
    """One record per contact of one case from its stored exposure rows (`queries.trace_runs.case_exposures`):
    the commune of the venue of the contact's earliest exposure (the first such row on a tie), the span of its
    exposures, close if any of them is (risk code 1). Contacts at a venue of no known commune are kept with
    commune ''. Records come in the order of each contact's first row. Columnar: a heavy case has tens of
    thousands of exposure rows, and a batch run hundreds of cases."""
    person = np.asarray(rows["person"], dtype=object)
    n = len(person)
    if n == 0:
        return []
    start = np.asarray(rows["start_us"], dtype=np.int64)
    end = np.asarray(rows["end_us"], dtype=np.int64)
    hop = np.asarray(rows["hop"])
    venue = np.asarray(rows["venue_id"], dtype=object)
    close = (np.asarray(rows["risk"]) == 1) if "risk" in rows else np.zeros(n, dtype=bool)
    people, group = np.unique(person, return_inverse=True)
    index = np.arange(n)
    first_row = np.full(len(people), n, dtype=np.int64)
    np.minimum.at(first_row, group, index)
    # The earliest exposure of each contact: sort by (contact, start, row) and take each contact's first.
    order = np.lexsort((index, start, group))
    leads = np.ones(n, dtype=bool)
    leads[1:] = group[order][1:] != group[order][:-1]
    earliest = np.empty(len(people), dtype=np.int64)
    earliest[group[order][leads]] = order[leads]
    span_from = np.full(len(people), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(span_from, group, start)
    span_to = np.full(len(people), np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(span_to, group, end)
    any_close = np.zeros(len(people), dtype=bool)
    np.logical_or.at(any_close, group, close)
    out = []
    for g in np.argsort(first_row, kind="stable").tolist():
        p, v = people[g], venue[earliest[g]]
        out.append(FollowUp(follow_up_id(case_id, p), case_id, p, int(hop[first_row[g]]),
                            "close" if any_close[g] else "casual", v, commune_of_venue.get(v, ""),
                            int(span_from[g]), int(span_to[g]), trace_id, created_at_us=created_at_us))  # fmt: skip
    return out


# -- exports ------------------------------------------------------------------------------------------------
# The district's spreadsheet: the layout health stations send upward (Vietnamese headers).
DISTRICT_HEADERS = ("STT", "Mã theo dõi", "Họ tên / định danh", "Số điện thoại", "Xã", "Địa điểm phơi nhiễm",
                    "Thời gian phơi nhiễm", "Mức (F1/F2)", "Nguy cơ", "Trạng thái", "Ngày", "Ghi chú",
                    "Ca bệnh (F0)")  # fmt: skip

# SORMAS's contact import (sormas-ui ContactImporter): a first row naming the entity of each column ("Contact")
# and a second row of ContactDto property paths, as in the project's own import files
# sormas-ui/src/test/resources/sormas_contact_import_test.csv and sormas_case_contact_import_test_success.csv
# (SORMAS-Foundation/SORMAS-Project @ af6249bc672f10c283ebddd73ca2314d9ec0c3de); the names are the constants of
# sormas-api/src/main/java/de/symeda/sormas/api/contact/ContactDto.java, the values those of its enums
# ContactCategory, QuarantineType and FollowUpStatus, and Disease.CORONAVIRUS.
SORMAS_COLUMNS = ("caseIdExternalSystem", "disease", "reportDateTime", "person.firstName", "person.lastName",
                  "person.phone", "lastContactDate", "contactCategory", "contactProximityDetails", "followUpStatus",
                  "followUpComment", "quarantine", "quarantineFrom", "quarantineTo", "description", "externalID",
                  "community")  # fmt: skip

# Go.Data's contact import maps each file column to a contact property; these are the property paths of its
# contact model and its relationship (WorldHealthOrganization/GoDataSource-API @
# cf8a5259700792742f401ace0e68b363784c71cd: common/models/contact.js `fieldLabelsMap`, common/models/relationship.js
# and relationship.json), with the reference values LNG_REFERENCE_DATA_CATEGORY_RISK_LEVEL_*.
GODATA_COLUMNS = ("visualId", "firstName", "lastName", "gender", "dateOfReporting", "dateOfLastContact", "riskLevel",
                  "riskReason", "followUp.status", "addresses[].phoneNumber", "addresses[].locationId",
                  "relationship.contactDate", "relationship.certaintyLevelId", "relationship.exposureTypeId",
                  "relationship.comment")  # fmt: skip
GODATA_RISK = {"close": "LNG_REFERENCE_DATA_CATEGORY_RISK_LEVEL_3_HIGH",
               "casual": "LNG_REFERENCE_DATA_CATEGORY_RISK_LEVEL_1_LOW"}  # fmt: skip
SORMAS_CATEGORY = {"close": "HIGH_RISK", "casual": "LOW_RISK"}


@dataclass(frozen=True)
class ExportPerson:
    """How a record names its person in an export: the pseudonym, or (re-identifying roles) identifier and phone."""

    name: str
    phone: str = ""


def district_rows(records: Sequence[FollowUp], people: Mapping[str, ExportPerson], places: Mapping[str, str],
                  communes: Mapping[str, str], fmt_time, fmt_day, lang: str = "vi") -> list[list[object]]:  # type: ignore[no-untyped-def]  # fmt: skip
    """The district spreadsheet's rows (after DISTRICT_HEADERS): one per record, numbered from 1."""
    out: list[list[object]] = []
    for n, r in enumerate(records, 1):
        who = people.get(r.person, ExportPerson(r.person))
        day = r.tested_on_us or r.quarantine_from_us or r.updated_at_us
        out.append([n, r.follow_up_id, who.name, who.phone, communes.get(r.commune_code, r.commune_code),
                    places.get(r.venue_id, r.venue_id), f"{fmt_time(r.exposed_from_us)} – {fmt_time(r.exposed_to_us)}",
                    f"F{r.hop}", ("cao" if r.risk == "close" else "thấp") if lang == "vi" else r.risk,
                    status_label(r.status, lang), fmt_day(day) if day else "", r.notes.replace("\n", "; "),
                    r.new_case_id])  # fmt: skip
    return out


def sormas_rows(records: Sequence[FollowUp], people: Mapping[str, ExportPerson], places: Mapping[str, str],
                communes: Mapping[str, str], fmt_day) -> list[list[str]]:  # type: ignore[no-untyped-def]  # fmt: skip
    """SORMAS's two header rows, then one row per record. Known fields filled, the others left empty."""
    out: list[list[str]] = [["Contact"] * len(SORMAS_COLUMNS), list(SORMAS_COLUMNS)]
    for r in records:
        who = people.get(r.person, ExportPerson(r.person))
        follow = {TESTED_POSITIVE: "COMPLETED", TESTED_NEGATIVE: "COMPLETED"}.get(r.status, "FOLLOW_UP")
        row = {"caseIdExternalSystem": r.case_id, "disease": "CORONAVIRUS", "reportDateTime": fmt_day(r.created_at_us),
               "person.lastName": who.name, "person.phone": who.phone, "lastContactDate": fmt_day(r.exposed_to_us),
               "contactCategory": SORMAS_CATEGORY[r.risk],
               "contactProximityDetails": places.get(r.venue_id, r.venue_id),
               "followUpStatus": follow, "followUpComment": f"{status_label(r.status, 'en')}. {r.notes}".strip(),
               "quarantine": "HOME" if r.quarantine_from_us else "",
               "quarantineFrom": fmt_day(r.quarantine_from_us) if r.quarantine_from_us else "",
               "quarantineTo": fmt_day(r.quarantine_until_us) if r.quarantine_until_us else "",
               "description": f"F{r.hop} at {places.get(r.venue_id, r.venue_id)}", "externalID": r.follow_up_id,
               "community": communes.get(r.commune_code, r.commune_code)}  # fmt: skip
        out.append([str(row.get(c, "")) for c in SORMAS_COLUMNS])
    return out


def godata_rows(records: Sequence[FollowUp], people: Mapping[str, ExportPerson], places: Mapping[str, str],
                fmt_day) -> list[list[str]]:  # type: ignore[no-untyped-def]
    """Go.Data's header row (property paths), then one row per record. Known fields filled, others empty."""
    out: list[list[str]] = [list(GODATA_COLUMNS)]
    for r in records:
        who = people.get(r.person, ExportPerson(r.person))
        row = {"visualId": r.follow_up_id, "lastName": who.name, "dateOfReporting": fmt_day(r.created_at_us),
               "dateOfLastContact": fmt_day(r.exposed_to_us), "riskLevel": GODATA_RISK[r.risk],
               "riskReason": f"F{r.hop}, {r.risk} contact at {places.get(r.venue_id, r.venue_id)}",
               "followUp.status": status_label(r.status, "en"), "addresses[].phoneNumber": who.phone,
               "addresses[].locationId": r.commune_code, "relationship.contactDate": fmt_day(r.exposed_to_us),
               "relationship.comment": f"contact of case {r.case_id}"}  # fmt: skip
        out.append([str(row.get(c, "")) for c in GODATA_COLUMNS])
    return out


def visible(records: Iterable[FollowUp], communes: frozenset[str] | None) -> list[FollowUp]:
    """The records of the given communes (None: all)."""
    return [r for r in records if communes is None or r.commune_code in communes]
