"""Paper logs (api/routes/paper.py): a venue's blank template, and a filled one stored as manual check-ins
through the same front door as a scanner's batch, answered with its per-row report."""

from __future__ import annotations

from datetime import date

from qrtrace.access import Action, Principal, Scope, authorize
from qrtrace.api.services.core import ServiceCore
from qrtrace.api.services.errors import NotFound, TooLarge
from qrtrace.paper import MAX_PAPER_BYTES, letter_keys, read_sheet, refused_letters, venue_infos
from qrtrace.producers.front import send
from qrtrace.producers.paper_log import edge_refusals, report_dict, scan_key, template_xlsx
from qrtrace.sinks.audit import now_us


class PaperLogService(ServiceCore):
    """The paper-log routes' decisions: a venue owner for its own venues, an officer for its area's."""

    def paper_template(self, who: Principal, venue_id: str, day: date | None, lang: str) -> bytes:
        """The blank template of one venue of the caller's (venue id, name and zones filled in)."""
        authorize(who, Action.IMPORT_PAPER_LOG, Scope(venue_id=venue_id), self.geo)
        with self._lock:
            info = venue_infos(self.rt.venues()).get(venue_id)
        if info is None:
            raise NotFound(f"Venue {venue_id} is not registered.")
        return template_xlsx(venue_id, info, day, lang)

    def import_paper_log(self, who: Principal, venue_id: str, data: bytes, lang: str) -> dict:
        """Store a filled sheet of `venue_id`: refused rows as dead letters, the rest as check-ins through the
        front door (pseudonymised at the edge); the report names every refused row (audited)."""
        authorize(who, Action.IMPORT_PAPER_LOG, Scope(venue_id=venue_id), self.geo)
        if len(data) > MAX_PAPER_BYTES:
            raise TooLarge(f"The sheet is over {MAX_PAPER_BYTES // (1024 * 1024)} MB; a paper log is one sheet.")
        settings = self.settings.with_overrides(lang=lang)
        source = f"paper:{who.name}"
        with self._lock:
            log = read_sheet(data, self.rt.venues(), settings, self.rt.keyring.pseudonym_key, venue_id)
            key = scan_key(self.rt.keyring.pseudonym_key)
            self.rt.writer.dead_letters(refused_letters(log, self.rt.pseudonymiser, self.rt.vault, key), source,
                                        now_us())  # fmt: skip
        letters = send(self.front, log.lines, {venue_id}, source).dead_letters if log.lines else []
        report = report_dict(log, edge_refusals(log, letter_keys(letters), lang), lang)
        self.rt.audit.as_actor(who.name).record("paper_import", "", venue_id, "paper log imported",
                                                rows=report["rows"], refused=report["refused_rows"],
                                                checkins=report["checkins"])  # fmt: skip
        return report
