"""Venues and reference data (api/routes/venues.py): the caller's communes, list and register venues, and
issue a venue's signed QR and poster."""

from __future__ import annotations

import dataclasses
import math
import time
from datetime import datetime

from qrtrace.access import Action, Principal, Role, Scope, TooManyAttempts, authorize
from qrtrace.api.services.core import ServiceCore
from qrtrace.api.services.errors import Conflict, NotFound
from qrtrace.domain.categories import load_categories
from qrtrace.domain.poster_pdf import render_poster_pdf
from qrtrace.domain.posters import venue_qr_code
from qrtrace.domain.venue_qr import encode_venue_qr, venue_signing_key
from qrtrace.domain.venues import Venue
from qrtrace.domain.zones import check_zones
from qrtrace.errors import InputError


class VenueService(ServiceCore):
    """The venue routes' decisions."""

    def communes(self, who: Principal) -> list[dict]:
        """The communes in the caller's area."""
        visible = self.visible_communes(who)
        return [c for c in self._all_communes() if visible is None or c["commune_code"] in visible]

    def list_venues(self, who: Principal, commune: str | None, category: str | None) -> list[dict]:
        """The venues in the caller's area (a venue owner's own), optionally one commune's or category's."""
        self._allowed(who, Action.LIST_VENUES)
        if commune is not None:
            authorize(who, Action.LIST_VENUES, Scope(commune_code=commune), self.geo)
        with self._lock:
            venues = self.rt.venues()
        if who.role is Role.VENUE_OWNER:
            venues = [v for v in venues if v.venue_id in who.venues]
        visible = self.visible_communes(who)
        return [
            {"venue_id": v.venue_id, "name": v.name, "category": v.category, "commune_code": v.commune_code,
             "capacity": v.capacity, "zones": list(v.zones)}
            for v in venues
            if (visible is None or v.commune_code in visible)
            and (commune is None or v.commune_code == commune)
            and (category is None or v.category == category)
        ]  # fmt: skip

    def register_venue(self, who: Principal, venue: Venue, establishment_id: str | None = None) -> dict:
        """Register a venue in a commune of the caller's area (audited); Conflict if its id is taken. With
        `establishment_id`, the venue is linked to that entry of its commune's census (checked first)."""
        if venue.commune_code not in self.geo.district_of_commune:
            raise InputError(f"Commune {venue.commune_code} is not a registered commune.")
        if venue.category not in load_categories():
            raise InputError(f"Unknown venue category {venue.category!r}.")
        authorize(who, Action.REGISTER_VENUE, Scope(commune_code=venue.commune_code), self.geo)
        # Venue ids are one namespace, so a taken id must be refused, and that refusal is one bit an officer
        # could probe with. It is kept to that bit: the same sentence wherever the venue is (never its
        # commune or name); each refusal is audited and counts against the caller (429 past the limit), and
        # each free id probed registers a real venue in the caller's own area, audited too.
        self._refuse_if_probing(who)
        audit = self.rt.audit.as_actor(who.name)
        with self._lock:
            if venue.venue_id in {v.venue_id for v in self.rt.venues()}:
                audit.record("register_venue", "", venue.venue_id, "refused: the venue_id is taken",
                             commune=venue.commune_code, outcome="id_taken")  # fmt: skip
                with self._failures_lock:
                    self._taken_ids.fail(who.name, time.monotonic())
                raise Conflict(f"The venue_id {venue.venue_id} is taken; choose another venue_id.")
            link = [(venue.venue_id, venue.commune_code, establishment_id)] if establishment_id else []
            if link:
                from qrtrace.queries.census import check_links

                check_links(self.rt.store, link, "")
            self.rt.register_venues([venue])
            self.front.venues_changed()
            audit.record("register_venue", "", venue.venue_id, "venue registered", commune=venue.commune_code,
                         outcome="registered")  # fmt: skip
            if link:
                from qrtrace.queries.census import link_venues

                link_venues(self.rt.store, audit, link)
            self.geo = self._geography()
        return {"venue_id": venue.venue_id, "registered": True, **({"establishment_id": establishment_id} if link
                                                                    else {})}  # fmt: skip

    def add_zone(self, who: Principal, venue_id: str, zone: str) -> dict:
        """Add a zone to a venue of the caller's area (scoped as registering a venue; audited): its QR and
        poster can then be issued, and check-ins may name it. InputError for a zone name it cannot have."""
        with self._lock:  # reentrant: the read and the write of the venue's zones under one hold
            venue, _ = self._venue(who, venue_id, Action.REGISTER_VENUE)
            try:
                zones = check_zones((*venue.zones, zone))
            except ValueError as exc:
                raise InputError(f"Venue {venue_id} cannot have this zone: {exc}.") from None
            self.rt.register_venues([dataclasses.replace(venue, zones=zones)])  # the newer row replaces the old
            self.front.venues_changed()
            self.rt.audit.as_actor(who.name).record("add_zone", "", venue_id, "zone added", zone=zone,
                                                    commune=venue.commune_code)  # fmt: skip
        return {"venue_id": venue_id, "zones": list(zones)}

    def _refuse_if_probing(self, who: Principal) -> None:
        with self._failures_lock:
            wait = self._taken_ids.retry_after(who.name, time.monotonic())
        if wait:
            seconds = max(1, math.ceil(wait))
            raise TooManyAttempts(f"Too many registrations of venue ids that are taken; wait {seconds} s and "
                                  "choose ids from your own list.", seconds)  # fmt: skip

    def _venue(self, who: Principal, venue_id: str, action: Action) -> tuple[Venue, str]:
        # The scope first: a scoped caller gets the same 403 for a venue elsewhere and for no venue at all,
        # so it cannot probe which venue ids exist.
        authorize(who, action, Scope(venue_id=venue_id), self.geo)
        with self._lock:
            venue = next((v for v in self.rt.venues() if v.venue_id == venue_id), None)
        if venue is None:
            raise NotFound(f"Venue {venue_id} is not registered.")
        names = {c["commune_code"]: c["name_vi"] for c in self._all_communes()}
        return venue, names.get(venue.commune_code, venue.commune_code)

    def venue_qr(self, who: Principal, venue_id: str, kind: str, lang: str, zone: str = "") -> bytes:
        """The signed venue QR as PNG or SVG, or the A4 poster as PDF (of one of its zones, with `zone`)."""
        venue, commune_name = self._venue(who, venue_id, Action.ISSUE_VENUE_QR)
        payload = encode_venue_qr(venue, venue_signing_key(self.rt.keyring.venue_signing_seed),
                                  datetime.now(self.settings.display_tz), zone=zone)  # fmt: skip
        if kind == "pdf":
            return render_poster_pdf(venue, payload, commune_name, lang, zone)
        import io

        buf = io.BytesIO()
        venue_qr_code(payload).save(buf, kind=kind, scale=10, border=4)
        return buf.getvalue()
