"""Public exposure sites: a positive case's venues and time windows, never a person. Pure: no I/O.

An epidemiologist publishes a case's sites so that anyone can check them against their own memory or app
history (docs/design.md, "Exposure sites"). The rules, in one place:

- **Which visits.** The case's visits that intersect the infectious window [from, to]: `start <= to` and
  `end >= from`, exactly the F1 sources of a trace (queries/trace.py, `case_frontier`). A visit longer than
  the longest a category allows is read as ending at `start + max_visit_us`, as the trace readers do.
- **The window of a visit.** `[start, end + grace)`, with the trace's grace (30 minutes by default): the
  trace counts someone who arrived up to `grace` after the case left as exposed, so the public window says
  the same. The visit is not clipped to [from, to]: a trace uses the whole source visit, so a person whose
  own visit overlaps a published window is exactly a person the trace (minimum overlap 0) would find
  co-present with the case there.
- **Merging.** Windows at one venue that overlap or touch (`next.start <= current.end`) are one site: a
  case who checked in twice at the market in one morning makes one line, not two.
- **Identity of a site.** `site_id` is a hash of (case, venue, from, to): publishing the same case and
  window again yields the same ids, so the store (a ReplacingMergeTree keyed by site_id) never holds a
  site twice. The case goes into the hash so that two cases at one venue stay two sites (withdrawing one
  case's sites never removes another's); the id itself is a one-way digest of a keyed pseudonym and names
  nobody.
- **What the public sees.** `public_site` is an allowlist (PUBLIC_FIELDS): the venue, its commune and
  category, from, to and the advice. Never the case's pseudonym, its case id, who published it or why.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

from qrtrace.spreadsheet import safe_row

DEFAULT_ADVICE_VI = (
    "Nếu bạn có mặt tại địa điểm này trong khung giờ trên: tự theo dõi sức khoẻ 14 ngày, hạn chế tiếp xúc, "
    "khai báo y tế và liên hệ ngay trạm y tế xã, thị trấn nơi bạn ở."
)
DEFAULT_ADVICE_EN = (
    "If you were at this venue during these hours: watch your health for 14 days, limit your contacts, make a "
    "health declaration and call your commune health station at once."
)
# The only fields a public answer ever holds (JSON keys, CSV columns), in this order.
PUBLIC_FIELDS = ("site_id", "venue_id", "venue_name", "commune_code", "commune_name", "category", "category_name",
                 "from", "to", "advice", "published_at")  # fmt: skip
CSV_HEADERS = {
    "vi": ("Mã điểm", "Mã địa điểm", "Địa điểm", "Mã xã", "Xã / thị trấn", "Mã loại", "Loại địa điểm", "Từ",
           "Đến", "Khuyến cáo", "Công bố lúc"),
    "en": ("Site", "Venue id", "Venue", "Commune code", "Commune", "Category code", "Category", "From", "To",
           "Advice", "Published at"),
}  # fmt: skip
US_PER_DAY = 86_400_000_000


@dataclass(frozen=True, slots=True)
class Window:
    """A venue and a half-open time window [from_us, to_us) in UTC microseconds."""

    venue_id: str
    from_us: int
    to_us: int


@dataclass(frozen=True, slots=True)
class Site:
    """A published exposure site as stored. `case_person` (the case's pseudonym) and `case_id` are internal:
    they let a site be withdrawn with its case and audited, and are never served publicly."""

    site_id: str
    venue_id: str
    from_us: int
    to_us: int
    advice_vi: str
    advice_en: str
    case_id: str
    case_person: str
    published_at_us: int
    published_by: str
    withdrawn: bool = False
    withdrawn_at_us: int = 0
    withdrawn_by: str = ""
    version: int = 0

    def same_publication(self, other: Site) -> bool:
        """Whether `other` says what this one says (a re-publish that changes nothing is not written)."""
        return (self.site_id, self.advice_vi, self.advice_en, self.withdrawn) == (
            other.site_id, other.advice_vi, other.advice_en, other.withdrawn)  # fmt: skip


@dataclass(frozen=True, slots=True)
class VenueInfo:
    """What the public list says about a venue."""

    name: str
    category: str
    commune_code: str


def case_windows(
    venue_ids: Sequence[str],
    starts: Sequence[int],
    ends: Sequence[int],
    from_us: int,
    to_us: int,
    grace_us: int,
    max_visit_us: int | None = None,
    withdrawn: Sequence[int] | None = None,
) -> list[Window]:
    """The merged site windows of one case's visits (see the module's rules), by venue then time.
    `withdrawn` (one flag per visit, the latest row of each): withdrawn visits are not visits."""
    if to_us < from_us:
        raise ValueError("the infectious window ends before it starts")
    if grace_us < 0:
        raise ValueError("grace cannot be negative")
    by_venue: dict[str, list[tuple[int, int]]] = {}
    for i, (venue, start, end) in enumerate(zip(venue_ids, starts, ends, strict=True)):
        if withdrawn is not None and withdrawn[i]:
            continue
        start, end = int(start), int(end)
        if max_visit_us is not None:
            end = min(end, start + max_visit_us)
        end = max(end, start)  # a corrupt row ending before it starts is an instant
        if start <= to_us and end >= from_us:
            by_venue.setdefault(venue, []).append((start, end + grace_us))
    windows = []
    for venue in sorted(by_venue):
        for lo, hi in merge_intervals(by_venue[venue]):
            windows.append(Window(venue, lo, hi))
    return windows


def merge_intervals(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching intervals merged, in order of start."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def site_id(case_person: str, venue_id: str, from_us: int, to_us: int) -> str:
    """The site's id: the same case, venue and window always give the same id (idempotent publish)."""
    digest = hashlib.sha256(f"qrtrace-exposure-site\x00{case_person}\x00{venue_id}\x00{from_us}\x00{to_us}".encode())
    return "es-" + digest.hexdigest()[:16]


def case_sites(
    windows: Sequence[Window],
    case_person: str,
    case_id: str,
    advice_vi: str,
    advice_en: str,
    at_us: int,
    actor: str,
) -> list[Site]:
    """The sites to publish for a case's windows."""
    return [
        Site(site_id(case_person, w.venue_id, w.from_us, w.to_us), w.venue_id, w.from_us, w.to_us, advice_vi,
             advice_en, case_id, case_person, at_us, actor, version=at_us)
        for w in windows
    ]  # fmt: skip


def to_write(new: Sequence[Site], stored: Mapping[str, Site]) -> tuple[list[Site], list[Site]]:
    """(sites to write, sites already published as they are). A site already active with the same advice
    keeps its row (and its first publication time); a withdrawn one is published again, with a version
    above the stored one (the store keeps the highest)."""
    write, unchanged = [], []
    for site in new:
        old = stored.get(site.site_id)
        if old is not None and old.same_publication(site):
            unchanged.append(old)
            continue
        version = max(site.version, old.version + 1) if old is not None else site.version
        write.append(_replace(site, version=version))
    return write, unchanged


def withdrawn_copy(site: Site, at_us: int, actor: str) -> Site:
    """The row that withdraws `site`: the same site, withdrawn, one version newer."""
    return _replace(site, withdrawn=True, withdrawn_at_us=at_us, withdrawn_by=actor,
                    version=max(at_us, site.version + 1))  # fmt: skip


def _replace(site: Site, **changes: object) -> Site:
    from dataclasses import replace

    return replace(site, **changes)  # type: ignore[arg-type]


# -- the public list ------------------------------------------------------------------------------------


def local_day_bounds(day: date, tz: timezone) -> tuple[int, int]:
    """[start, end) of a local calendar day in UTC microseconds."""
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    start_us = round(start.timestamp() * 1_000_000)
    return start_us, start_us + US_PER_DAY


def select_public(
    sites: Iterable[Site],
    venues: Mapping[str, VenueInfo],
    commune: str | None = None,
    day: date | None = None,
    tz: timezone = timezone(timedelta(hours=7)),
) -> list[Site]:
    """The active sites, optionally of one commune and overlapping one local day, by start then venue."""
    bounds = local_day_bounds(day, tz) if day is not None else None
    chosen = []
    for s in sites:
        if s.withdrawn:
            continue
        if commune is not None and (venues.get(s.venue_id) is None or venues[s.venue_id].commune_code != commune):
            continue
        if bounds is not None and not (s.from_us < bounds[1] and s.to_us > bounds[0]):
            continue
        chosen.append(s)
    return sorted(chosen, key=lambda s: (s.from_us, s.venue_id, s.site_id))


def _iso(us: int, tz: timezone) -> str:
    when = datetime.fromtimestamp(us / 1_000_000, UTC).astimezone(tz)
    return when.isoformat(timespec="seconds")


def public_site(
    site: Site,
    venues: Mapping[str, VenueInfo],
    commune_names: Mapping[str, str],
    category_names: Mapping[str, tuple[str, str]],
    lang: str,
    tz: timezone,
) -> dict[str, str]:
    """One site as the public sees it: PUBLIC_FIELDS only (never the case, its pseudonym or the publisher)."""
    venue = venues.get(site.venue_id, VenueInfo(site.venue_id, "", ""))
    vi, en = category_names.get(venue.category, (venue.category, venue.category))
    advice = (site.advice_en or site.advice_vi) if lang == "en" else site.advice_vi
    row = {
        "site_id": site.site_id,
        "venue_id": site.venue_id,
        "venue_name": venue.name,
        "commune_code": venue.commune_code,
        "commune_name": commune_names.get(venue.commune_code, venue.commune_code),
        "category": venue.category,
        "category_name": en if lang == "en" else vi,
        "from": _iso(site.from_us, tz),
        "to": _iso(site.to_us, tz),
        "advice": advice,
        # the day only: sites published together share a second, which would group one case's itinerary
        "published_at": _iso(site.published_at_us, tz)[:10],
    }
    assert tuple(row) == PUBLIC_FIELDS
    return row


def internal_site(
    site: Site,
    venues: Mapping[str, VenueInfo],
    commune_names: Mapping[str, str],
    category_names: Mapping[str, tuple[str, str]],
    lang: str,
    tz: timezone,
) -> dict[str, object]:
    """One site as epidemiologists list it (CLI, API): the public fields plus its case id, status and who
    published or withdrew it. Still not the pseudonym: nobody needs it to act on a site."""
    row: dict[str, object] = dict(public_site(site, venues, commune_names, category_names, lang, tz))
    row["published_at"] = _iso(site.published_at_us, tz)  # the public sees the day only; staff the time
    row["case_id"] = site.case_id
    row["status"] = "withdrawn" if site.withdrawn else "active"
    row["published_by"] = site.published_by
    row["withdrawn_at"] = _iso(site.withdrawn_at_us, tz) if site.withdrawn else None
    row["withdrawn_by"] = site.withdrawn_by if site.withdrawn else None
    return row


def public_csv(rows: Iterable[Mapping[str, str]], lang: str) -> str:
    """The public rows as CSV (header in `lang`), every cell escaped for spreadsheets."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_HEADERS["en" if lang == "en" else "vi"])
    for row in rows:
        writer.writerow(safe_row(row[f] for f in PUBLIC_FIELDS))
    return "\ufeff" + buf.getvalue()  # a BOM: spreadsheets then read the Vietnamese as UTF-8
