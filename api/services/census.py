"""The deployment census (api/routes/census.py): a commune or district officer imports the establishments of
their own area that must deploy QR, and confirms which census entry a registered venue is.

Decisions:
- The importer's area decides what is written: rows of a commune outside it are refused row by row with
  that reason (a district officer of another district imports nothing of yours), like every other bad row.
- Good rows are kept, bad rows reported (row, column, reason); each import is audited with its counts.
"""

from __future__ import annotations

from qrtrace.access import Action, Principal, Scope, authorize
from qrtrace.api.services.core import ServiceCore
from qrtrace.api.services.errors import NotFound
from qrtrace.census_render import census_dict
from qrtrace.domain.census import read_table
from qrtrace.errors import InputError
from qrtrace.queries.census import import_census, link_venues, matches_for


class CensusService(ServiceCore):
    """The census routes' decisions, each narrowed to the caller's area."""

    def import_census(self, who: Principal, data: bytes, filename: str) -> dict:
        """Import a CSV or XLSX census into the caller's area: accepted count and each refused row."""
        self._allowed(who, Action.IMPORT_CENSUS)
        if not data:
            raise InputError("The request body is empty; send the census file (CSV or XLSX) as the body.")
        table = read_table(data, filename)
        area = self.visible_communes(who)
        with self._lock:
            result = import_census(self.rt.store, self.rt.audit.as_actor(who.name), table, filename or "upload",
                                   area)  # fmt: skip
        return census_dict(result)

    def _census_venue(self, who: Principal, venue_id: str):  # type: ignore[no-untyped-def]
        authorize(who, Action.IMPORT_CENSUS, Scope(venue_id=venue_id), self.geo)
        with self._lock:
            venue = next((v for v in self.rt.venues() if v.venue_id == venue_id), None)
        if venue is None:  # authorize already refused a venue outside the caller's area with one sentence
            raise NotFound(f"Venue {venue_id} is not registered.")
        return venue

    def census_matches(self, who: Principal, venue_id: str) -> dict:
        """The census entries a venue of the caller's area may be (its link if it has one)."""
        venue = self._census_venue(who, venue_id)
        with self._lock:
            found = matches_for(self.rt.store, venue.venue_id, venue.name, venue.commune_code, venue.category)
        return {"venue_id": venue.venue_id, "commune_code": venue.commune_code, "matches": found}

    def link_census(self, who: Principal, venue_id: str, establishment_id: str) -> dict:
        """Link a venue of the caller's area to an establishment of its commune's census (audited)."""
        venue = self._census_venue(who, venue_id)
        with self._lock:
            linked = link_venues(self.rt.store, self.rt.audit.as_actor(who.name),
                                 [(venue.venue_id, venue.commune_code, establishment_id)])[0]  # fmt: skip
        return {"venue_id": linked.venue_id, "establishment_id": linked.establishment_id,
                "commune_code": linked.commune_code}  # fmt: skip
