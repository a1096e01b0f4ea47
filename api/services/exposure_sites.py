"""Exposure sites (api/routes/exposure_sites.py): epidemiologists publish, list and withdraw a case's sites;
anyone reads the active ones, without a token, as JSON or CSV.

Decisions:
- Publishing needs the right to trace (RUN_TRACE); publishing by a raw identifier also needs the right to
  declare a case (DECLARE_CASE), for the reason admins cannot declare one: naming a person and reading
  their movements is the epidemiologist's. Every site's venue must be in the caller's area (the scope
  check of traces and venues, `access.authorize`), checked before anything is written: a role bound to a
  commune can neither publish nor withdraw a site elsewhere.
- The public answers are built from the store at most once per minute per (format, filters, language):
  a bounded server-side cache, emptied by every publish and withdrawal in this process (another process's
  change shows within its time to live). Each answer has a strong ETag (a digest of its bytes): a client
  sending it back in If-None-Match gets a 304 without a body.
- Requests to the public data are limited per client address (the connection's peer: a reverse proxy in
  front should limit by the real address itself) in fixed one-minute windows: a bounded table of counters,
  the least recently seen forgotten first; past the limit a 429 with Retry-After and a sentence.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import orjson

from qrtrace.access import Action, Principal, Scope, TooManyAttempts, authorize
from qrtrace.api.services.core import ServiceCore
from qrtrace.api.services.errors import NotFound
from qrtrace.errors import InputError
from qrtrace.queries.cases import declared_cases
from qrtrace.queries.exposure_sites import Site, public_csv
from qrtrace.sinks.exposure_sites import (
    SiteNotFound,
    listed_rows,
    public_rows,
    publish_sites,
    sites_by_id,
    venue_info,
    withdraw_sites,
)

PUBLIC_CACHE_SECONDS = 60
PUBLIC_CACHE_ENTRIES = 512
PUBLIC_CLIENTS_TRACKED = 50_000


class RateLimit:
    """At most `limit` requests per key in each fixed window of `window_s` seconds. Pure (the caller passes
    the clock); memory bounded to `max_keys` counters, the least recently seen forgotten first."""

    def __init__(self, limit: int, window_s: float = 60.0, max_keys: int = PUBLIC_CLIENTS_TRACKED) -> None:
        self.limit, self.window_s, self.max_keys = limit, window_s, max_keys
        self._counts: OrderedDict[str, tuple[int, int]] = OrderedDict()

    def hit(self, key: str, now: float) -> float | None:
        """Count one request of `key` at `now`: None if allowed, else the seconds until its window ends."""
        window = int(now // self.window_s)
        seen, count = self._counts.pop(key, (window, 0))
        count = count + 1 if seen == window else 1
        self._counts[key] = (window, count)  # newest last
        while len(self._counts) > self.max_keys:
            self._counts.popitem(last=False)
        if count <= self.limit:
            return None
        return (window + 1) * self.window_s - now


@dataclass(frozen=True)
class PublicAnswer:
    """A public answer: its bytes, media type and ETag (`not_modified`: the client's copy is current)."""

    body: bytes
    media_type: str
    etag: str
    not_modified: bool = False


class PublicCache:
    """Answers by key for `ttl_s` seconds, at most `max_entries` (the oldest dropped first); thread-safe."""

    def __init__(self, ttl_s: float = PUBLIC_CACHE_SECONDS, max_entries: int = PUBLIC_CACHE_ENTRIES) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._entries: OrderedDict[tuple, tuple[float, int, PublicAnswer]] = OrderedDict()
        self._generation = 0
        self._lock = threading.Lock()

    def get(self, key: tuple, make: Callable[[], PublicAnswer], now: float) -> PublicAnswer:
        with self._lock:
            hit = self._entries.get(key)
            generation = self._generation
            if hit is not None and now - hit[0] < self.ttl_s and hit[1] == generation:
                return hit[2]
        answer = make()  # outside the cache's lock: the store has its own
        with self._lock:
            if generation == self._generation:  # not emptied meanwhile: the answer is still current
                self._entries.pop(key, None)
                self._entries[key] = (now, generation, answer)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return answer

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names `etag` (weak comparison, as RFC 9110 asks for GET)."""
    if not if_none_match:
        return False
    tags = [t.strip() for t in if_none_match.split(",")]
    return "*" in tags or etag in (t[2:] if t.startswith("W/") else t for t in tags)


_STATE_LOCK = threading.Lock()


class ExposureSiteService(ServiceCore):
    """The exposure-site routes' decisions."""

    def _public_state(self) -> tuple[RateLimit, PublicCache]:
        with _STATE_LOCK:
            state = getattr(self, "_sites_public", None)
            if state is None:
                state = (RateLimit(self.settings.public_requests_per_minute), PublicCache())
                self._sites_public = state
            return state

    def _check_sites_scope(self, who: Principal, venue_ids: list[str]) -> None:
        """Every venue must be in the caller's area (epidemiologists and admins: anywhere)."""
        with self._lock:
            venues = venue_info(self.rt.store, venue_ids)
        for v in sorted(set(venue_ids)):
            commune = venues[v].commune_code if v in venues else self.geo.commune_of_venue.get(v)
            authorize(who, Action.RUN_TRACE, Scope(venue_id=v, commune_code=commune), self.geo)

    def publish_exposure_sites(
        self, who: Principal, person_id: str | None, case_id: str | None, from_us: int | None, to_us: int | None,
        purpose: str, advice: str | None = None, advice_en: str | None = None,
    ) -> dict:  # fmt: skip
        """Publish a case's sites: by its identifier with a window, or by a declared case's id (its own
        infectious window unless one is given). Audited; idempotent; NoVisits (400) when there is none."""
        authorize(who, Action.RUN_TRACE, Scope(), self.geo)
        if (person_id is None) == (case_id is None):
            raise InputError("Give either person_id or case_id (one of the two).")
        if person_id is not None:
            authorize(who, Action.DECLARE_CASE, Scope(), self.geo)
            if from_us is None or to_us is None:
                raise InputError("A person_id needs its window: give 'from' and 'to'.")
            person, case_ref = self.rt.pseudonymiser.one(person_id), ""
        else:
            with self._lock:
                found = declared_cases(self.rt.store, [case_id])  # type: ignore[list-item]
            if case_id not in found:
                raise NotFound(f"No declared case {case_id}; declare it first with POST /api/cases.")
            case = found[case_id]  # type: ignore[index]
            person, case_ref = case.person, case.case_id
            from_us = case.from_us if from_us is None else from_us
            to_us = case.to_us if to_us is None else to_us
        with self._lock:
            done = publish_sites(self.rt.store, self.rt.audit.as_actor(who.name), self.settings, person, from_us,
                                 to_us, purpose, case_ref, advice, advice_en,  # type: ignore[arg-type]
                                 allow=lambda sites: self._check_sites_scope(who, [s.venue_id for s in sites]))
        self._public_state()[1].clear()
        return {"case_id": case_ref or None, "written": done.written,
                "sites": self._rows_of(who, [s.site_id for s in done.sites])}  # fmt: skip

    def _rows_of(self, who: Principal, site_ids: list[str]) -> list[dict]:
        with self._lock:
            rows = {r["site_id"]: r for r in listed_rows(self.rt.store, self.settings, self.settings.lang,
                                                         include_withdrawn=True)}  # fmt: skip
        return [rows[s] for s in site_ids if s in rows]

    def list_exposure_sites(self, who: Principal, commune: str | None, include_withdrawn: bool,
                            lang: str) -> list[dict]:  # fmt: skip
        """The sites in the caller's area (active ones, or all), with their case ids; not their pseudonyms."""
        self._allowed(who, Action.RUN_TRACE)
        if commune is not None:
            authorize(who, Action.RUN_TRACE, Scope(commune_code=commune), self.geo)
        with self._lock:
            return listed_rows(self.rt.store, self.settings, lang, commune, include_withdrawn,
                               self.visible_communes(who))  # fmt: skip

    def withdraw_exposure_site(self, who: Principal, site_id: str, purpose: str) -> dict:
        """Withdraw one site from the public list (audited); NotFound for an id never published."""
        self._allowed(who, Action.RUN_TRACE)
        with self._lock:
            site: Site | None = sites_by_id(self.rt.store, [site_id]).get(site_id)
        if site is None:
            raise NotFound(f"No exposure site {site_id} was ever published.")
        self._check_sites_scope(who, [site.venue_id])
        try:
            with self._lock:
                withdraw_sites(self.rt.store, self.rt.audit.as_actor(who.name), purpose, [site_id])
        except SiteNotFound as exc:
            raise NotFound(str(exc)) from None
        self._public_state()[1].clear()
        return self._rows_of(who, [site_id])[0]

    # -- the public list (no token) ------------------------------------------------------------------------
    def public_exposure_sites(
        self, client: str, fmt: str, commune: str | None, day: date | None, lang: str, if_none_match: str | None
    ) -> PublicAnswer:
        """The active sites as JSON or CSV, for anyone: rate-limited per client address, cached, with an ETag."""
        limiter, cache = self._public_state()
        now = time.monotonic()
        with _STATE_LOCK:
            wait = limiter.hit(client or "-", now)
        if wait is not None:
            raise TooManyAttempts(f"Too many requests from this address (at most {limiter.limit} a minute); "
                                  f"try again in {math.ceil(wait)} s.", max(1, math.ceil(wait)))  # fmt: skip

        def make() -> PublicAnswer:
            with self._lock:
                rows = public_rows(self.rt.store, self.settings, lang, commune, day)
            if fmt == "csv":
                body = public_csv(rows, lang).encode("utf-8")
                return PublicAnswer(body, "text/csv; charset=utf-8", etag_of(body))
            shown = {"commune": commune, "date": day.isoformat() if day else None, "lang": lang}
            body = orjson.dumps({"count": len(rows), "filters": shown, "sites": rows})
            return PublicAnswer(body, "application/json", etag_of(body))

        answer = cache.get((fmt, commune, day, lang), make, now)
        if etag_matches(if_none_match, answer.etag):
            return PublicAnswer(b"", answer.media_type, answer.etag, not_modified=True)
        return answer
