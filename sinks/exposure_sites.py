"""Exposure sites in the store: publish a case's sites, withdraw them, read them (the thin shell around the
pure rules of queries/exposure_sites.py). Publishing and withdrawing are audited (who, when, case, why).

`publish_case_sites` is the one call a caller with a raw identifier needs (the CLI, the demo); the API,
which also publishes declared cases by id, calls `publish_sites` with the pseudonym it already holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qrtrace.domain.categories import load_categories
from qrtrace.errors import InputError
from qrtrace.queries.exposure_sites import (
    DEFAULT_ADVICE_EN,
    DEFAULT_ADVICE_VI,
    Site,
    VenueInfo,
    case_sites,
    case_windows,
    internal_site,
    public_site,
    select_public,
    to_write,
    withdrawn_copy,
)
from qrtrace.queries.reference import commune_rows
from qrtrace.settings import Settings
from qrtrace.sinks.audit import AuditLog, now_us
from qrtrace.sinks.clickhouse_sql import load_sql
from qrtrace.sinks.store import Store
from qrtrace.stream_processors.config import longest_allowed_visit_us

if TYPE_CHECKING:
    from datetime import date

    from qrtrace.embedded import EmbeddedRuntime

TABLE = "qrtrace.exposure_sites"
COLUMNS = ("site_id", "venue_id", "from_us", "to_us", "advice_vi", "advice_en", "case_id", "case_person",
           "published_at_us", "published_by", "withdrawn", "withdrawn_at_us", "withdrawn_by", "version")  # fmt: skip


class NoVisits(InputError):
    """The case has no visit in the window: nothing to publish."""


class SiteNotFound(InputError):
    """No exposure site with this id (or no site of this case)."""


@dataclass(frozen=True)
class Publication:
    """What one publish did: every site of the case's window, and how many rows were written (the others
    were already published as they are)."""

    sites: list[Site]
    written: int


def stated_purpose(text: str) -> str:
    """The stated purpose, trimmed (as the API's); a purpose of blanks is no purpose."""
    text = " ".join(text.split())
    if len(text) < 3:
        raise InputError("State the purpose in a few words (at least 3 characters); it goes to the audit log.")
    return text


# -- store access ---------------------------------------------------------------------------------------


def case_visits(store: Store, person: str, from_us: int, to_us: int, max_visit_us: int) -> dict[str, list]:
    """One case's visits that can intersect [from, to] (latest row of each, withdrawn flag included)."""
    params = {"person": person, "min_start": from_us - max_visit_us, "to_us": to_us}
    return store.query(load_sql("qrtrace.queries", "exposure_site_visits"), params)


def _sites(rows: dict[str, list]) -> list[Site]:
    return [
        Site(r[0], r[1], int(r[2]), int(r[3]), r[4], r[5], r[6], r[7], int(r[8]), r[9], bool(r[10]), int(r[11]),
             r[12], int(r[13]))
        for r in zip(*(rows[c] for c in COLUMNS), strict=True)
    ]  # fmt: skip


def read_sites(store: Store) -> list[Site]:
    """Every site's latest row, withdrawn ones included, by start."""
    return _sites(store.query(load_sql("qrtrace.queries", "exposure_sites_read")))


def sites_by_id(store: Store, site_ids: Sequence[str]) -> dict[str, Site]:
    if not site_ids:
        return {}
    rows = store.query(load_sql("qrtrace.queries", "exposure_sites_by_id"), {"site_ids": list(site_ids)})
    return {s.site_id: s for s in _sites(rows)}


def sites_of_case(store: Store, person: str) -> list[Site]:
    return _sites(store.query(load_sql("qrtrace.queries", "exposure_sites_of_case"), {"person": person}))


def write_sites(store: Store, sites: Sequence[Site]) -> None:
    if not sites:
        return
    store.insert(TABLE, {
        "site_id": [s.site_id for s in sites], "venue_id": [s.venue_id for s in sites],
        "from_us": [s.from_us for s in sites], "to_us": [s.to_us for s in sites],
        "advice_vi": [s.advice_vi for s in sites], "advice_en": [s.advice_en for s in sites],
        "case_id": [s.case_id for s in sites], "case_person": [s.case_person for s in sites],
        "published_at_us": [s.published_at_us for s in sites], "published_by": [s.published_by for s in sites],
        "withdrawn": [int(s.withdrawn) for s in sites], "withdrawn_at_us": [s.withdrawn_at_us for s in sites],
        "withdrawn_by": [s.withdrawn_by for s in sites], "version": [s.version for s in sites],
    })  # fmt: skip


def venue_info(store: Store, venue_ids: Iterable[str]) -> dict[str, VenueInfo]:
    ids = sorted(set(venue_ids))
    if not ids:
        return {}
    rows = store.query(load_sql("qrtrace.queries", "exposure_site_venues"), {"venue_ids": ids})
    return {v: VenueInfo(n, c, k) for v, n, c, k in zip(rows["venue_id"], rows["name"], rows["category"],
                                                         rows["commune_code"], strict=True)}  # fmt: skip


# -- publish and withdraw -------------------------------------------------------------------------------


def publish_sites(
    store: Store,
    audit: AuditLog,
    settings: Settings,
    case_person: str,
    from_us: int,
    to_us: int,
    purpose: str,
    case_id: str = "",
    advice_vi: str | None = None,
    advice_en: str | None = None,
    grace_us: int | None = None,
    allow: Callable[[list[Site]], None] | None = None,
) -> Publication:
    """Publish the sites of the case `case_person` (a pseudonym) for its window [from, to]; audited (even
    when the case has no visit there: looking up a case's movements is). NoVisits when there is nothing to
    publish. Advice: the defaults, or the text given (the English page shows `advice_en`, else `advice_vi`).
    `allow(sites)` may refuse (raise) before anything is written: the API's scope check."""
    purpose = stated_purpose(purpose)
    if to_us < from_us:
        raise InputError("The window ends before it starts; 'to' must be after 'from'.")
    grace = settings.grace_minutes * 60_000_000 if grace_us is None else grace_us
    longest = longest_allowed_visit_us(settings)
    visits = case_visits(store, case_person, from_us, to_us, longest)
    windows = case_windows(visits["venue_id"], visits["start_us"], visits["end_us"], from_us, to_us, grace,
                           longest, visits["withdrawn"])  # fmt: skip
    vi = advice_vi.strip() if advice_vi and advice_vi.strip() else DEFAULT_ADVICE_VI
    en = advice_en.strip() if advice_en and advice_en.strip() else (vi if advice_vi and advice_vi.strip()
                                                                   else DEFAULT_ADVICE_EN)  # fmt: skip
    at = now_us()
    sites = sorted(case_sites(windows, case_person, case_id, vi, en, at, audit.actor),
                   key=lambda s: (s.from_us, s.venue_id))  # fmt: skip
    if allow is not None:
        allow(sites)
    write, unchanged = to_write(sites, sites_by_id(store, [s.site_id for s in sites]))
    write_sites(store, write)
    audit.record("publish_exposure_sites", case_id, case_person, purpose, from_us=from_us, to_us=to_us,
                 grace_us=grace, sites=[s.site_id for s in sites], written=len(write))  # fmt: skip
    if not sites:
        raise NoVisits("This case has no visit in the window given, so there is no exposure site to publish; "
                       "check the identifier and the dates.")  # fmt: skip
    by_id = {s.site_id: s for s in [*write, *unchanged]}
    return Publication([by_id[s.site_id] for s in sites], len(write))


def publish_case_sites(
    runtime: EmbeddedRuntime,
    settings: Settings,
    person_id: str,
    from_us: int,
    to_us: int,
    purpose: str,
    actor: str,
    advice_vi: str | None = None,
    advice_en: str | None = None,
    case_id: str = "",
) -> list[Site]:
    """Publish the exposure sites of the case who checked in with `person_id` (the raw identifier,
    pseudonymised as `qrtrace trace` does) over [from_us, to_us]; audited in `actor`'s name. Returns every
    site of that window (already published ones included). NoVisits if the case has none there."""
    person = runtime.pseudonymiser.one(person_id)
    return publish_sites(runtime.store, runtime.audit.as_actor(actor), settings, person, from_us, to_us, purpose,
                         case_id, advice_vi, advice_en).sites  # fmt: skip


def withdraw_sites(
    store: Store, audit: AuditLog, purpose: str, site_ids: Sequence[str] = (), case_person: str | None = None
) -> list[Site]:
    """Withdraw sites by id, or every site of one case (its pseudonym); audited. Returns the sites as they
    now are (a site already withdrawn stays as it was). SiteNotFound for an id that was never published."""
    purpose = stated_purpose(purpose)
    if case_person is not None:
        found = {s.site_id: s for s in sites_of_case(store, case_person)}
        if not found:
            raise SiteNotFound("This case has no published exposure site.")
        wanted = list(found)
    else:
        wanted = list(dict.fromkeys(site_ids))
        found = sites_by_id(store, wanted)
        missing = [s for s in wanted if s not in found]
        if missing:
            raise SiteNotFound(f"No exposure site {missing[0]} was ever published.")
    at = now_us()
    rows = [withdrawn_copy(found[s], at, audit.actor) for s in wanted if not found[s].withdrawn]
    write_sites(store, rows)
    cases = sorted({found[s].case_id for s in wanted} - {""})
    persons = sorted({found[s].case_person for s in wanted})
    audit.record("withdraw_exposure_sites", ",".join(cases), ",".join(persons), purpose, sites=wanted,
                 written=len(rows))  # fmt: skip
    now = {s.site_id: s for s in rows}
    return [now.get(s, found[s]) for s in wanted]


# -- the public list ------------------------------------------------------------------------------------


def public_rows(store: Store, settings: Settings, lang: str, commune: str | None = None,
                day: date | None = None) -> list[dict[str, str]]:  # fmt: skip
    """The active sites as the public sees them (queries.exposure_sites.PUBLIC_FIELDS), filtered."""
    sites = [s for s in read_sites(store) if not s.withdrawn]
    venues = venue_info(store, [s.venue_id for s in sites])
    chosen = select_public(sites, venues, commune, day, settings.display_tz)
    communes = {c.commune_code: c.name_vi for c in commune_rows(store)}
    categories = {c.code: (c.name_vi, c.name_en) for c in load_categories().values()}
    return [public_site(s, venues, communes, categories, lang, settings.display_tz) for s in chosen]


def listed_rows(store: Store, settings: Settings, lang: str, commune: str | None = None,
                include_withdrawn: bool = False, communes_allowed: frozenset[str] | None = None
                ) -> list[dict[str, object]]:  # fmt: skip
    """The sites as epidemiologists list them (`internal_site`): active ones, or all with
    `include_withdrawn`; of one commune, and only within `communes_allowed` (None: everywhere)."""
    sites = read_sites(store)
    venues = venue_info(store, [s.venue_id for s in sites])
    communes = {c.commune_code: c.name_vi for c in commune_rows(store)}
    categories = {c.code: (c.name_vi, c.name_en) for c in load_categories().values()}
    shown = []
    for s in sites:
        where = venues[s.venue_id].commune_code if s.venue_id in venues else ""
        if (s.withdrawn and not include_withdrawn) or (commune is not None and where != commune):
            continue
        if communes_allowed is not None and where not in communes_allowed:
            continue
        shown.append(internal_site(s, venues, communes, categories, lang, settings.display_tz))
    return shown
