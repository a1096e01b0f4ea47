"""Messages to the contacts of a trace, composed from its results. Pure: no I/O.

One message per (case, contact, tier): its id is a stable hash of the case's pseudonym, the contact's
pseudonym and the tier, so re-running the same trace composes the same ids and the outbox keeps one row per
id whatever the retries. The text says where (the venue of the contact's first exposure), when (that
exposure's start in local time), what to do (by tier) and whom to call (the commune health station of the
venue's commune, on the hotline of the settings: the reference data carries no station phone numbers).
It never names the case or any pseudonym.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timezone

TIERS = ("close", "casual")
TIER_CHOICES = ("close", "casual", "all")
MESSAGE_ID_VERSION = "qrtrace-notify-v1"


def contact_tier(contact: object) -> str:
    """The risk tier of a trace contact: "close" or "casual". The one place the tier is read: contacts gain
    a `risk` field with risk tiers (issue 14); before that every contact is casual."""
    tier = getattr(contact, "risk", "casual")
    return tier if tier in TIERS else "casual"


def message_id(case_person: str, contact_person: str, tier: str) -> str:
    """A stable id for (case, contact, tier): the same inputs always give the same 32 hex digits. The inputs
    are keyed pseudonyms already, so the id (sent to a gateway as its idempotency key) reveals nothing."""
    text = "\x1f".join((MESSAGE_ID_VERSION, case_person, contact_person, tier))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Place:
    """What a message says about a venue: its name and the name of its commune."""

    venue_name: str
    commune_name: str


@dataclass(frozen=True, slots=True)
class ContactNotice:
    """What a message is composed from: one contact of one case, pseudonymous."""

    case_id: str
    case_person: str
    person: str
    hop: int
    tier: str
    venue_id: str  # the venue of the exposure the message names (a close contact's: the earliest close one)
    first_exposure_us: int
    at_us: int | None = None  # when that exposure began (None: the first exposure)


@dataclass(frozen=True, slots=True)
class Message:
    """One outbox row: pseudonymous (the phone number is opened only at send time, never stored here)."""

    message_id: str
    case_id: str
    case_person: str
    person: str
    tier: str
    hop: int
    venue_id: str
    first_exposure_us: int
    lang: str
    text: str


def notices_from_results(results: Iterable[object]) -> list[ContactNotice]:
    """One notice per contact of each TraceResult (duck-typed: `case`, `contacts`; each contact's `person`,
    `hop`, `first_exposure`, `exposures` with `venue` and `start`)."""
    out: list[ContactNotice] = []
    for result in results:
        case = result.case  # type: ignore[attr-defined]
        for contact in result.contacts:  # type: ignore[attr-defined]
            tier = contact_tier(contact)
            venue, at = named_exposure(contact.exposures, contact.first_exposure, tier)
            out.append(ContactNotice(case.case_id, case.person, contact.person, contact.hop, tier, venue,
                                     contact.first_exposure, at))  # fmt: skip
    return out


def named_exposure(exposures: Sequence[object], first_exposure_us: int, tier: str) -> tuple[str, int]:
    """The (venue, start) a message names: for a close contact the earliest close exposure (the one that
    makes them close), otherwise the first exposure (`first_venue`)."""
    close = [e for e in exposures if getattr(e, "risk", "") == "close"] if tier == "close" else []
    if close:
        e = min(close, key=lambda e: (e.start, e.venue))  # type: ignore[attr-defined]
        return e.venue, e.start  # type: ignore[attr-defined]
    return first_venue(exposures, first_exposure_us), first_exposure_us


def first_venue(exposures: Sequence[object], first_exposure_us: int) -> str:
    """The venue of the exposure that placed the contact first (the earliest start; ties: the first venue id)."""
    if not exposures:
        return ""
    at_first = [e for e in exposures if e.start == first_exposure_us]  # type: ignore[attr-defined]
    pool = at_first or list(exposures)
    return min(pool, key=lambda e: (e.start, e.venue)).venue  # type: ignore[attr-defined]


def wanted_tier(tier: str, choice: str) -> bool:
    """Whether a contact of `tier` is notified under the CLI/API choice close | casual | all."""
    return choice == "all" or tier == choice


def compose_messages(
    notices: Iterable[ContactNotice],
    places: Mapping[str, Place],
    choice: str,
    lang: str,
    hotline: str,
    tz: timezone,
) -> list[Message]:
    """The messages for the notices of the chosen tier(s), one per id (a notice repeated is one message)."""
    if choice not in TIER_CHOICES:
        raise ValueError(f"tier must be one of {', '.join(TIER_CHOICES)}, not {choice!r}")
    seen: dict[str, Message] = {}
    for n in notices:
        if not wanted_tier(n.tier, choice):
            continue
        mid = message_id(n.case_person, n.person, n.tier)
        if mid in seen:
            continue
        place = places.get(n.venue_id, Place(n.venue_id, ""))
        at = n.first_exposure_us if n.at_us is None else n.at_us
        seen[mid] = Message(mid, n.case_id, n.case_person, n.person, n.tier, n.hop, n.venue_id, n.first_exposure_us,
                            lang, message_text(n.tier, place, at, lang, hotline, tz, n.hop))  # fmt: skip
    return list(seen.values())


ADVICE = {
    ("close", "vi"): "Bạn là người tiếp xúc gần: hãy tự cách ly tại nhà, hạn chế tiếp xúc với người khác và "
    "liên hệ ngay để được hướng dẫn xét nghiệm.",
    ("casual", "vi"): "Hãy tự theo dõi sức khoẻ trong 14 ngày; nếu sốt, ho hoặc khó thở, hãy đeo khẩu trang "
    "và báo ngay.",
    ("close", "en"): "You are a close contact: please quarantine at home, avoid contact with others and call "
    "now to arrange a test.",
    ("casual", "en"): "Please monitor your health for 14 days; if you have a fever, cough or difficulty "
    "breathing, wear a mask and call at once.",
}


def station_name(commune_name: str, lang: str) -> str:
    """The commune health station that follows a contact exposed in this commune."""
    if not commune_name:
        return "Trạm Y tế xã" if lang == "vi" else "the commune health station"
    return f"Trạm Y tế {commune_name}" if lang == "vi" else f"Trạm Y tế {commune_name} (commune health station)"


def message_text(tier: str, place: Place, at_us: int, lang: str, hotline: str, tz: timezone, hop: int = 1) -> str:
    """The text of one message: where, when (local time), with whom (a case at F1; a contact of a case from
    F2 on), what to do, and whom to call."""
    when = datetime.fromtimestamp(at_us / 1_000_000, UTC).astimezone(tz)
    shown = when.strftime("%H:%M %d/%m/%Y")
    offset = when.strftime("%z")
    zone = f"GMT{offset[:3]}:{offset[3:]}" if offset else ""
    station = station_name(place.commune_name, lang)
    advice = ADVICE[(tier if tier in TIERS else "casual", "en" if lang == "en" else "vi")]
    if lang == "en":
        whom = "a confirmed COVID-19 case" if hop <= 1 else "a contact of a confirmed COVID-19 case"
        return (f"Health notice: you were at {place.venue_name} at {shown} ({zone}) at the same time as "
                f"{whom}. {advice} Contact {station}, hotline {hotline}.")  # fmt: skip
    whom = "một ca bệnh COVID-19" if hop <= 1 else "một người tiếp xúc của ca bệnh COVID-19"
    return (f"Thông báo y tế: bạn đã có mặt tại {place.venue_name} lúc {shown} ({zone}) cùng thời điểm với "
            f"{whom}. {advice} Liên hệ {station}, số điện thoại {hotline}.")  # fmt: skip
