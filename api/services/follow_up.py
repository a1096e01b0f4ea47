"""Contact follow-up (api/routes/follow_up.py): a health station's list of its commune's contacts, each record
with its history, status changes, the positive contact declared as a case, the phone number to call, exports.

Scope: a record belongs to the commune of the venue of its first exposure. A health station (like a commune
officer) sees only its commune: its list is filtered, another commune named in a request is a 403, and a record
of another commune is a 404 with the same sentence as an unknown id (no one learns which ids exist elsewhere).
Decisions on who may do what are in qrtrace/access.py; the phone number of a record is opened (audited, with a
purpose) for the roles that follow people up: health stations for their own records, epidemiologists.
"""

from __future__ import annotations

from qrtrace import render
from qrtrace.access import Action, Principal, Scope, authorize
from qrtrace.api.services.core import ServiceCore, stated_purpose
from qrtrace.api.services.errors import Conflict, NotFound
from qrtrace.errors import InputError
from qrtrace.queries.follow_up import FollowUp, Update, check_status, status_label
from qrtrace.sinks import follow_up as store_fu


class FollowUpService(ServiceCore):
    """The follow-up routes' decisions."""

    def _fu_communes(self, who: Principal, action: Action, commune: str | None) -> frozenset[str] | None:
        """The communes a list or export covers: the one named (checked against the caller's area) or all the
        caller may see (None: all)."""
        if commune:
            authorize(who, action, Scope(commune_code=commune), self.geo)
            return frozenset({commune})
        self._allowed(who, action)
        return self.visible_communes(who)

    def _fu_record(self, who: Principal, action: Action, follow_up_id: str) -> FollowUp:
        """The record, if the caller's role may take `action` and the record is in its area; else 404 (the same
        sentence for an unknown id and for a record elsewhere)."""
        self._allowed(who, action)
        with self._lock:
            record = store_fu.by_ids(self.rt.store, [follow_up_id]).get(follow_up_id)
        area = self.visible_communes(who)
        if record is None or (area is not None and record.commune_code not in area):
            raise NotFound(f"No follow-up record {follow_up_id} in your area.")
        return record

    def _fu_view(self, r: FollowUp, names: dict[str, str], lang: str = "vi") -> dict:
        tz = self.settings.display_tz

        def when(us: int) -> str | None:
            return render.iso(us, tz) if us else None

        return {"follow_up_id": r.follow_up_id, "case_id": r.case_id, "person": r.person, "hop": r.hop,
                "tier": f"F{r.hop}", "risk": r.risk, "venue_id": r.venue_id,
                "venue_name": names.get(r.venue_id, r.venue_id), "commune_code": r.commune_code,
                "exposed_from": when(r.exposed_from_us), "exposed_to": when(r.exposed_to_us), "trace_id": r.trace_id,
                "status": r.status, "status_label": status_label(r.status, lang),
                "quarantine_from": when(r.quarantine_from_us), "quarantine_until": when(r.quarantine_until_us),
                "tested_on": when(r.tested_on_us), "new_case_id": r.new_case_id or None, "notes": r.notes,
                "updated_at": when(r.updated_at_us), "updated_by": r.updated_by or None}  # fmt: skip

    def _fu_names(self) -> dict[str, str]:
        with self._lock:
            return store_fu.venue_places(self.rt.store)[1]

    # -- reading ----------------------------------------------------------------------------------------------
    def list_follow_ups(self, who: Principal, commune: str | None, status: str | None, lang: str = "vi") -> dict:
        """The records of the caller's area (or of the one commune named in it), optionally of one status."""
        communes = self._fu_communes(who, Action.READ_FOLLOW_UP, commune)
        if status:
            check_status(status)
        with self._lock:
            records = store_fu.listing(self.rt.store, communes, status or "")
            names = store_fu.venue_places(self.rt.store)[1]
        counts: dict[str, int] = {}
        for r in records:
            counts[r.status] = counts.get(r.status, 0) + 1
        views = [self._fu_view(r, names, lang) for r in records]
        return {"follow_ups": views, "counts": counts, "may_update": self.may(who, Action.UPDATE_FOLLOW_UP),
                "may_call": self.may(who, Action.CALL_FOLLOW_UP),
                "may_trace": self.may(who, Action.RUN_TRACE)}  # fmt: skip

    def get_follow_up(self, who: Principal, follow_up_id: str, lang: str = "vi") -> dict:
        """One record with its history (oldest change first)."""
        record = self._fu_record(who, Action.READ_FOLLOW_UP, follow_up_id)
        with self._lock:
            changes = store_fu.history(self.rt.store, follow_up_id)
        tz = self.settings.display_tz

        def shown(field: str, value: str) -> str | None:  # times as ISO 8601 in the display zone, 0 as none
            if not field.endswith("_us"):
                return value
            return render.iso(int(value), tz) if value not in ("", "0") else None

        return self._fu_view(record, self._fu_names(), lang) | {"history": [
            {"at": render.iso(c["at_us"], tz), "by": c["actor"], "field": c["field"].removesuffix("_us"),
             "from": shown(c["field"], c["from"]), "to": shown(c["field"], c["to"])} for c in changes]}  # fmt: skip

    # -- changing -----------------------------------------------------------------------------------------------
    def update_follow_up(self, who: Principal, follow_up_id: str, status: str | None, date_us: int | None,
                         until_us: int | None, note: str | None) -> dict:  # fmt: skip
        """A status (with its date) and/or a note; tested_positive goes through `declare_positive` (one step)."""
        if status == "tested_positive":
            return self.declare_positive(who, follow_up_id, date_us, None, None, None, note)
        self._fu_record(who, Action.UPDATE_FOLLOW_UP, follow_up_id)
        with self._lock:
            _, after = store_fu.update(self.rt.store, self.rt.audit.as_actor(who.name), follow_up_id,
                                       Update(status, date_us, until_us, note))  # fmt: skip
        return self.get_follow_up(who, after.follow_up_id)

    def declare_positive(self, who: Principal, follow_up_id: str, tested_on_us: int | None, case_id: str | None,
                         from_us: int | None, to_us: int | None, note: str | None) -> dict:  # fmt: skip
        """tested_positive: the contact declared as a case (F0) in one step. The answer names the new case; who
        may trace (epidemiologists) trace it from the console's trace page; a health station is told so."""
        self._fu_record(who, Action.UPDATE_FOLLOW_UP, follow_up_id)
        with self._lock:
            try:
                after, new_case, window = store_fu.declare_positive(
                    self.rt.store, self.rt.audit.as_actor(who.name), follow_up_id, tested_on_us, case_id, from_us,
                    to_us, note)  # fmt: skip
            except store_fu.CaseTaken as exc:
                raise Conflict(str(exc)) from None
        tz = self.settings.display_tz
        may_trace = self.may(who, Action.RUN_TRACE)
        return {"follow_up": self.get_follow_up(who, after.follow_up_id), "case_id": new_case, "declared": True,
                "infectious_from": render.iso(window[0], tz), "infectious_to": render.iso(window[1], tz),
                "trace": {"may_trace": may_trace, "case_ids": [new_case],
                          "by": "you" if may_trace else "the province's epidemiologists"}}  # fmt: skip

    def follow_ups_from_trace(self, who: Principal, trace_id: str) -> dict:
        """Records for a stored run's contacts (idempotent); runs stored by the API get them when they finish."""
        authorize(who, Action.RUN_TRACE, Scope(), self.geo)
        with self._lock:
            try:
                return store_fu.create_from_run(self.rt.store, trace_id, self.rt.audit.as_actor(who.name))
            except store_fu.UnknownFollowUp as exc:
                raise NotFound(str(exc)) from None

    def contact_of_follow_up(self, who: Principal, follow_up_id: str, purpose: str) -> dict:
        """The identifier and phone number of a record's person, for those who call (re-identification,
        audited with the purpose): a health station for its own commune's records, an epidemiologist."""
        if not self.may(who, Action.CALL_FOLLOW_UP):
            raise_denied(who)
        purpose = stated_purpose(purpose)
        record = self._fu_record(who, Action.UPDATE_FOLLOW_UP, follow_up_id)
        with self._lock:
            people = store_fu.people_for_export(self.rt.store, self.rt.vault, self.rt.audit.as_actor(who.name),
                                                [record], purpose)  # fmt: skip
        p = people.get(record.person)
        return {"follow_up_id": follow_up_id, "identifier": p.name if p else None, "contact": (p.phone or None) if p
                else None}  # fmt: skip

    def export_follow_ups(self, who: Principal, fmt: str, commune: str | None, status: str | None, purpose: str,
                          lang: str = "vi") -> tuple[bytes, str, str]:  # fmt: skip
        """The area's records as the district spreadsheet, a SORMAS or a Go.Data contact import (audited).
        Identifiers and phones for those who call (re-identification, audited), pseudonyms for the others."""
        communes = self._fu_communes(who, Action.EXPORT_FOLLOW_UP, commune)
        if fmt not in store_fu.EXPORT_FORMATS:
            raise InputError(f"Unknown format {fmt!r}; use one of {', '.join(store_fu.EXPORT_FORMATS)}.")
        if status:
            check_status(status)
        purpose = stated_purpose(purpose)
        with self._lock:
            records = store_fu.listing(self.rt.store, communes, status or "")
            _, places = store_fu.venue_places(self.rt.store)
            names = store_fu.commune_names(self.rt.store)
            audit = self.rt.audit.as_actor(who.name)
            people = store_fu.people_for_export(self.rt.store, self.rt.vault, audit, records, purpose) \
                if self.may(who, Action.CALL_FOLLOW_UP) and records else {}  # fmt: skip
            audit.record("export_follow_ups", "", ",".join(sorted(communes or ())) or "*", purpose, format=fmt,
                         rows=len(records), reidentified=bool(people))  # fmt: skip
        return store_fu.export_file(fmt, records, people, places, names, self.settings.display_tz, lang)


def raise_denied(who: Principal) -> None:
    from qrtrace.access import AccessDenied

    raise AccessDenied(f"The role {who.role} may not open the phone numbers of contacts.")
