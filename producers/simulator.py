"""District simulator: a seeded population with daily routines that emits realistic scanner traffic.

The output is JSON lines in the ingest contract of DESIGN.md, in *delivery* order, with the faults
real scanners produce: retried deliveries (same `scan_id`, identical bytes), late deliveries, repeat
scans while a visit is open, missing check-outs, check-outs without a check-in and malformed records.
The same config always gives byte-identical output.

Model, per simulated local day (+07:00), in four disjoint time slots so that one person is never at
two venues at once (weddings and funerals replace the person's daytime activity):

- early (05:00-07:00): markets, essential shops, the bus into town;
- day (07:00-17:45): work at the person's office/factory/industrial zone, school, a market stall, or
  errands (market, shops, health station, pagoda, supermarket, lunch, a bus trip), weddings, funerals;
- after work (17:50-19:50): shops, evening market, gym, early dinner, the bus home;
- evening (19:55-23:30): restaurants, karaoke, bars, nightclub, massage.

Work is numpy-vectorised per day; only the final formatting of each JSON line is per-event Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import cache
from types import MappingProxyType

import numpy as np
import orjson

from qrtrace.domain.admin_units import Commune, load_communes
from qrtrace.domain.categories import load_categories
from qrtrace.domain.venues import Venue
from qrtrace.errors import InputError

VN_TZ = timezone(timedelta(hours=7))
ROLES = ("worker", "farmer", "student", "retired", "trader")
MODES = ("venue_qr", "personal_qr", "manual")
BAD_RECORD_KINDS = (
    "malformed_json",
    "missing_field",
    "bad_direction",
    "bad_time",
    "offsetless_time",
    "unknown_venue",
    "wrong_type",
    "bad_mode",
)
REQUIRED_FIELDS = ("scan_id", "venue_id", "person_id", "direction", "event_time", "mode", "scanner_id")
GATHERING_CATEGORIES = ("wedding", "funeral")

_DAY_MS = 86_400_000
_MIN_MS = 60_000
_ROLE_SHARES = (0.30, 0.30, 0.17, 0.13, 0.10)
# Registered venue ids are VN1000000..VN8999999; VN9xxxxxx is reserved for 'unknown venue' records.
_VENUE_ID_RANGE = (1_000_000, 9_000_000)
_ANCHOR = "anchor"  # the person's own workplace, school or market stall
_BUS = "bus"  # a bus_station scan, then a public_transport vehicle scan
_BUS_WAIT_MIN = (3, 12)
_BUS_STATION_NO_CHECKOUT = 3.0  # nobody scans out of a shelter
_GATHERING_ARRIVAL_MIN = 60  # guests arrive within an hour of the start
_GATHERING_STAY = MappingProxyType({"wedding": (45, 180), "funeral": (20, 120)})
_GATHERING_NO_CHECKOUT = 2.0
_GATHERING_LOCAL_SHARE = 0.85
_DECLARATION_SHARE = 0.15
_LATENCY_MS = 2_000  # ordinary delivery latency
_RETRY_DELAY_MS = (1_000, 180_000)
_MS_PRECISION_SHARE = 0.3  # scanners that send milliseconds
_MANUAL_SHARE = MappingProxyType({"retired": 0.25, "farmer": 0.12})
_MANUAL_SHARE_DEFAULT = 0.05
_PERSONAL_QR_SHARE = 0.25
_ID_KIND_SHARES = (0.75, 0.15, 0.10)  # phone, citizen id, personal-QR id
_PHONE_PREFIX_DIGITS = "35789"  # Vietnamese mobile numbers: 03x, 05x, 07x, 08x, 09x
_TUYEN_QUANG_CCCD_PREFIX = "008"


@dataclass(frozen=True, slots=True)
class _Activity:
    name: str
    slot: int
    category: str  # a venue category, _ANCHOR or _BUS
    window: tuple[int, int]  # start, minutes after local midnight
    stay: tuple[int, int]  # minutes (for a bus trip: the ride)
    local_share: float  # chance the venue is in the person's home commune
    no_checkout: float  # relative chance of never scanning out


# Each activity fits its slot: window end + longest stay <= the slot's end.
_ACTIVITIES: tuple[_Activity, ...] = (
    _Activity("shop_early", 0, "essential_shop", (300, 400), (5, 20), 0.9, 1.5),
    _Activity("market_early", 0, "market", (300, 360), (10, 60), 0.85, 1.4),
    _Activity("bus_am", 0, _BUS, (300, 315), (30, 90), 0.7, 0.6),
    _Activity("stall", 1, _ANCHOR, (300, 360), (240, 420), 1.0, 2.0),
    _Activity("work", 1, _ANCHOR, (420, 480), (450, 585), 1.0, 1.6),
    _Activity("school", 1, _ANCHOR, (420, 440), (210, 570), 1.0, 1.5),
    _Activity("market_day", 1, "market", (420, 660), (15, 75), 0.85, 1.4),
    _Activity("shop_day", 1, "essential_shop", (420, 1030), (5, 25), 0.9, 1.5),
    _Activity("mall_day", 1, "mall_supermarket", (480, 960), (20, 90), 0.5, 1.0),
    _Activity("hospital", 1, "hospital", (420, 900), (20, 150), 0.7, 0.5),
    _Activity("religious", 1, "religious_site", (480, 900), (20, 120), 0.7, 1.2),
    _Activity("tourism", 1, "tourism_entertainment", (480, 840), (60, 210), 0.3, 0.8),
    _Activity("lunch", 1, "restaurant", (630, 750), (30, 90), 0.7, 0.8),
    _Activity("bus_day", 1, _BUS, (480, 900), (30, 90), 0.7, 0.6),
    _Activity("shop_evening", 2, "essential_shop", (1070, 1170), (5, 20), 0.9, 1.5),
    _Activity("market_evening", 2, "market", (1070, 1130), (10, 45), 0.85, 1.4),
    _Activity("mall_evening", 2, "mall_supermarket", (1070, 1120), (20, 60), 0.5, 1.0),
    _Activity("gym", 2, "gym", (1070, 1110), (45, 75), 0.5, 0.7),
    _Activity("dinner_early", 2, "restaurant", (1070, 1110), (30, 80), 0.7, 0.8),
    _Activity("bus_pm", 2, _BUS, (1070, 1085), (30, 90), 0.7, 0.6),
    _Activity("dinner", 3, "restaurant", (1195, 1260), (30, 120), 0.6, 0.8),
    _Activity("karaoke", 3, "karaoke", (1200, 1290), (60, 120), 0.5, 0.6),
    _Activity("bar", 3, "bar", (1200, 1290), (45, 120), 0.5, 0.8),
    _Activity("nightclub", 3, "nightclub", (1230, 1290), (60, 120), 0.3, 0.7),
    _Activity("massage", 3, "massage_beauty", (1195, 1290), (45, 90), 0.5, 0.6),
)
_SLOTS = 4

# Chance that a person of each role does an activity on a weekday / at the weekend ("-": never).
# Chances within one slot sum to <= 1; traders keep a market stall from dawn, so no early slot.
_ROUTINES = """
activity        worker     farmer     student    retired    trader
shop_early      .12/.12    .15/.15    .08/.06    .12/.12    -
market_early    .08/.15    .30/.35    -          .35/.35    -
bus_am          .05/.02    -          -          -          -
stall           -          -          -          -          .88/.88
work            .90/.30    -          -          -          -
school          -          -          .93/.05    -          -
market_day      0/.15      .15/.20    0/.05      .10/.10    -
shop_day        .02/.15    .25/.25    .02/.20    .18/.18    -
mall_day        .02/.08    .02/.05    0/.10      -          -
hospital        .01/.02    .04/.03    -          .08/.05    -
religious       0/.03      .03/.06    -          .08/.15    -
tourism         0/.03      0/.01      0/.05      -          -
lunch           0/.04      .03/.05    0/.06      .02/.03    -
bus_day         0/.03      .04/.05    .02/.06    .03/.03    -
shop_evening    .30/.25    .22/.22    .20/.20    .12/.12    .18/.18
market_evening  .12/.10    .10/.10    -          .06/.06    -
mall_evening    .06/.08    .01/.03    .02/.05    -          .05/.08
gym             .06/.05    -          .03/.05    -          -
dinner_early    .06/.08    .03/.05    .04/.06    -          -
bus_pm          .05/.02    -          -          -          -
dinner          .12/.20    .05/.10    .04/.08    .02/.05    .06/.12
karaoke         .04/.08    .02/.05    .01/.06    -          .02/.05
bar             .04/.06    .01/.02    -          -          -
nightclub       .005/.015  -          -          -          -
massage         .01/.02    -          -          -          -
"""

# Where workers work: category -> (weight, chance the workplace is in the home commune).
_WORKPLACES = MappingProxyType(
    {
        "office": (0.22, 0.7),
        "factory": (0.33, 0.6),
        "industrial_zone": (0.18, 0.3),
        "school": (0.06, 0.7),
        "hospital": (0.05, 0.6),
        "essential_shop": (0.06, 0.8),
        "restaurant": (0.05, 0.7),
        "mall_supermarket": (0.03, 0.4),
        "market": (0.02, 0.7),
    }
)
_SCHOOL_LOCAL_SHARE = 0.85
_STALL_LOCAL_SHARE = 0.6

# Standing venues: capacity, and "count+extra up to" per rural commune (xã) and for the town.
_VENUE_TABLE = """
category               capacity  commune  town
office                       80      1+1   5+2
industrial_zone            2000        0     1
factory                     300      0+2   2+1
restaurant                   60      1+2   8+3
bar                          80        0     2
nightclub                   200        0     1
karaoke                      60        0   3+1
massage_beauty               20        0   2+1
gym                          40        0     2
meeting                     150      0+1     1
hospital                    300        1     2
school                      600      1+1     4
bus_station                  50        1     2
public_transport             45      0+2     4
mall_supermarket            300        0     2
market                      800        1     2
essential_shop               20      3+2  10+4
tourism_entertainment      1000        0     0
religious_site              300        1     1
"""
# Well-known venues added to the default layout when their commune is simulated.
_LANDMARKS = MappingProxyType(
    {
        "Tân Trào": (
            ("tourism_entertainment", "Khu di tích quốc gia đặc biệt Tân Trào"),
            ("religious_site", "Đình Tân Trào"),
        ),
        "Sơn Nam": (("industrial_zone", "Cụm công nghiệp Sơn Nam"),),
    }
)
_POPULARITY_SIGMA = 0.9
_TOWN_POPULARITY = 3.0

# Name templates, "|"-separated: {c} commune, {u} unit type (xã / thị trấn), {d} district.
_NAMES = MappingProxyType(
    {
        "office": "UBND {u} {c}|Công an {u} {c}|Bưu điện văn hóa {u} {c}|Hợp tác xã Nông nghiệp {c}"
        "|Trạm Khuyến nông {c}",
        "industrial_zone": "Cụm công nghiệp {c}|Khu công nghiệp {c}",
        "factory": "Xưởng chế biến chè {c}|Công ty TNHH May mặc {c}|Nhà máy gạch tuynel {c}"
        "|Xưởng chế biến gỗ rừng trồng {c}|Cơ sở sản xuất miến dong {c}|Công ty CP Khoáng sản {c}",
        "restaurant": "Nhà hàng Hương Quê|Quán cơm Bình Dân|Quán phở Bò Nam Định|Nhà hàng Đồng Quê"
        "|Quán lẩu Dê Núi|Quán bún chả Hà Nội|Quán cà phê Phố Núi|Nhà hàng Sông Lô|Quán bánh cuốn Bà Tư"
        "|Nhà hàng cá Sông Phó Đáy|Quán cháo lòng Thanh Hương",
        "bar": "Quán bar Sông Lô|Beer club Phố Núi|Bia hơi Hà Nội",
        "nightclub": "Vũ trường Ánh Sao",
        "karaoke": "Karaoke Hoàng Gia|Karaoke Sao Mai|Karaoke Hồng Hạc|Karaoke Nice",
        "massage_beauty": "Spa Thu Hà|Salon tóc Tuấn Anh|Thẩm mỹ viện Ngọc Lan",
        "gym": "Phòng tập thể hình Hùng Cường|CLB Thể hình {c}",
        "meeting": "Hội trường UBND {u} {c}|Nhà văn hóa {c}",
        "hospital": "Trạm Y tế {u} {c}|Phòng khám đa khoa khu vực {c}",
        "school": "Trường THCS {c}|Trường Tiểu học {c}|Trường Mầm non {c}|Trường THPT {c}",
        "bus_station": "Nhà chờ xe buýt {c}|Điểm dừng xe buýt ngã ba {c}",
        "mall_supermarket": "Siêu thị {d}|Siêu thị Minh Phương|Trung tâm thương mại {d}",
        "market": "Chợ {c}|Chợ phiên {c}",
        "essential_shop": "Cửa hàng tạp hóa Minh Anh|Tạp hóa Thu Hằng|Nhà thuốc Hồng Nhung"
        "|Hiệu thuốc Bảo Châu|Cửa hàng xăng dầu {c}|Cửa hàng vật tư nông nghiệp {c}|Tạp hóa Hoàng Long"
        "|Cửa hàng điện thoại Thế Anh|Tạp hóa Lan Hương|Cửa hàng gạo Tuấn Hà|Quầy thuốc Tâm Đức",
        "tourism_entertainment": "Khu vui chơi {c}",
        "religious_site": "Chùa {c}|Đình {c}|Đền {c}",
    }
)
_TOWN_NAMES = MappingProxyType(
    {
        "office": "UBND huyện {d}|UBND {u} {c}|Huyện ủy {d}|Kho bạc Nhà nước {d}"
        "|Ngân hàng Agribank chi nhánh {d}|Chi cục Thuế huyện {d}|Công an huyện {d}",
        "hospital": "Bệnh viện Đa khoa huyện {d}|Trung tâm Y tế huyện {d}|Trạm Y tế {u} {c}",
        "school": "Trường THPT {c}|Trường THCS {c}|Trường Tiểu học {c}|Trường Mầm non Hoa Sen",
        "bus_station": "Bến xe khách {d}|Nhà chờ xe buýt {c}",
        "market": "Chợ {c}|Chợ Bắc {c}",
        "meeting": "Hội trường Huyện ủy {d}",
    }
)
_SURNAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Hà", "Ma", "Lương", "Triệu")
_MIDDLE_NAMES = ("Văn", "Đức", "Quang", "Minh", "Xuân", "Thị")
_GIVEN_NAMES = ("Hùng", "Dũng", "Thắng", "Tuấn", "Bình", "Sơn", "Lâm", "Hải", "Lan", "Hoa", "Hạnh", "Thủy")
_HAMLETS = ("Đồng Mán", "Tân Lập", "Cầu Trắng", "Hòa Bình", "Làng Mới", "Đồng Bèn", "Khuôn Thê", "Gốc Gạo")

_LINE = (
    b'{"scan_id":"%b","venue_id":"%b","person_id":"%b","direction":"%b",'
    b'"event_time":"%b+07:00","mode":"%b","scanner_id":"S-%b"}'
)
_LINE_WITH_DECLARATION = _LINE[:-1] + b',"declaration":%b}'


# ---------------------------------------------------------------------------------------------------
# Public API


def _default_start(days: int) -> datetime:
    """Local midnight `days` days before today, so the last simulated day is yesterday."""
    today = datetime.now(VN_TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days)


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. `start=None` means today's local midnight minus `days` days.

    After construction `start` is always the local (+07:00) midnight of the first simulated day.
    Shares are per genuine scan, except `double_scan_share` and `missing_checkout_share` (per visit).
    """

    seed: int = 2021
    start: datetime | None = None
    days: int = 3
    population: int = 20_000
    communes: tuple[Commune, ...] = ()  # empty -> load_communes()
    venues_per_commune: dict[str, int] | None = None  # None -> realistic defaults (the town gets more)
    double_scan_share: float = 0.03
    retry_share: float = 0.02
    late_share: float = 0.02
    max_late_minutes: int = 20
    missing_checkout_share: float = 0.2
    bad_record_share: float = 0.005
    unmatched_checkout_share: float = 0.002
    weddings_per_commune_day: float = 0.12
    funerals_per_commune_day: float = 0.06

    def __post_init__(self) -> None:
        if self.days < 1:
            raise InputError(f"The simulation needs at least one day, got days={self.days}.")
        if self.population < 1:
            raise InputError(f"The population must be at least 1, got {self.population}.")
        if self.max_late_minutes < 0:
            raise InputError(f"max_late_minutes cannot be negative, got {self.max_late_minutes}.")
        for name in (
            "double_scan_share",
            "retry_share",
            "late_share",
            "missing_checkout_share",
            "bad_record_share",
            "unmatched_checkout_share",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InputError(f"{name} must be between 0 and 1, got {value}.")
        for name in ("weddings_per_commune_day", "funerals_per_commune_day"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} cannot be negative, got {getattr(self, name)}.")
        if self.venues_per_commune is not None:
            _check_venue_counts(self.venues_per_commune)
        start = self.start if self.start is not None else _default_start(self.days)
        if start.tzinfo is None or start.utcoffset() is None:
            raise InputError(f"The simulation start {start.isoformat()} needs a UTC offset (e.g. +07:00).")
        midnight = start.astimezone(VN_TZ).replace(hour=0, minute=0, second=0, microsecond=0)
        object.__setattr__(self, "start", midnight)

    @property
    def first_day(self) -> date:
        """The local date of the first simulated day."""
        assert self.start is not None  # set by __post_init__
        return self.start.date()


@dataclass(frozen=True, slots=True)
class Person:
    """A resident. `person_id` is what they check in with; `anchor_venue` is where they spend weekdays."""

    person_id: str
    phone: str
    home_commune: str
    role: str
    anchor_venue: str | None = None


@dataclass(frozen=True, slots=True)
class Gathering:
    """A wedding or funeral: its own venue, used on one day, guests arriving within an hour of the start."""

    venue_id: str
    day: int  # index of the simulated day
    start_minute: int  # minutes after local midnight
    guests: int


@dataclass
class SimulatedDistrict:
    """Venues to register and people to simulate; `gatherings` schedules the wedding/funeral venues."""

    config: SimulationConfig
    venues: list[Venue]
    people: list[Person]
    gatherings: list[Gathering] = field(default_factory=list)


def build_district(config: SimulationConfig) -> SimulatedDistrict:
    """Lay out venues (with Vietnamese names), weddings/funerals and a population with routines."""
    rng = np.random.default_rng([config.seed, 0])
    communes = _communes(config)
    specs = _plan_venues(communes, config, rng)
    plans = _plan_gatherings(communes, config, rng)
    ids = rng.choice(_VENUE_ID_RANGE[1] - _VENUE_ID_RANGE[0], size=len(specs) + len(plans), replace=False)
    venue_ids = [f"VN{i + _VENUE_ID_RANGE[0]:07d}" for i in ids.tolist()]
    venues = [Venue(vid, *spec) for vid, spec in zip(venue_ids[: len(specs)], specs, strict=True)]
    gatherings: list[Gathering] = []
    for vid, (spec, (day, start_minute, guests)) in zip(venue_ids[len(specs) :], plans, strict=True):
        venues.append(Venue(vid, *spec))
        gatherings.append(Gathering(vid, day, start_minute, guests))
    people = _make_people(communes, venues, config, rng)
    return SimulatedDistrict(config, venues, people, gatherings)


def checkin_batches(district: SimulatedDistrict, batch_size: int = 20_000) -> Iterator[list[bytes]]:
    """JSON lines (no newline) in delivery order, in lists of at most `batch_size`; memory is one day's worth.

    Every good record is delivered at most `max_late_minutes` after its event_time, so a record is never
    more than `max_late_minutes` older (in event time) than any record delivered before it.
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}.")
    return _rebatch(_delivered_days(district), batch_size)


def expected_event_count(district: SimulatedDistrict) -> int:
    """Expected number of records `checkin_batches` yields (an estimate, typically within a few percent)."""
    cfg = district.config
    ix = _Index.build(district)
    role_counts = np.bincount(ix.role, minlength=len(ROLES))
    visits_per_activity = np.array(
        [(2.0 if a.category == _BUS else 1.0) * ix.activity_possible[i] for i, a in enumerate(_ACTIVITIES)]
    )
    guests_by_day = np.zeros(cfg.days)
    for g in district.gatherings:
        if 0 <= g.day < cfg.days:
            guests_by_day[g.day] += g.guests
    day_slot = np.array([a.slot == 1 for a in _ACTIVITIES])
    visits = 0.0
    for day in range(cfg.days):
        table = ix.weekend if _is_weekend(cfg, day) else ix.weekday
        per_role = table @ visits_per_activity
        day_per_role = table @ (visits_per_activity * day_slot)
        # Guests give up their daytime activity for the wedding or funeral.
        guests = min(guests_by_day[day], len(ix.role))
        visits += float(role_counts @ per_role) + guests * (1.0 - float(role_counts @ day_per_role) / len(ix.role))
    scans = visits * (2.0 - cfg.missing_checkout_share + cfg.double_scan_share)
    scans *= 1.0 + cfg.unmatched_checkout_share
    return round(scans * (1.0 + cfg.retry_share + cfg.bad_record_share))


# ---------------------------------------------------------------------------------------------------
# District layout


def _check_venue_counts(counts: dict[str, int]) -> None:
    categories = load_categories()
    for code, count in counts.items():
        if code not in categories:
            raise InputError(f"Unknown venue category {code!r} in venues_per_commune.")
        if code in GATHERING_CATEGORIES:
            rate = f"{code}s_per_commune_day"
            raise InputError(f"{code} venues are scheduled events, not standing venues: set {rate} instead.")
        if count < 0:
            raise InputError(f"venues_per_commune[{code!r}] cannot be negative, got {count}.")


def _communes(config: SimulationConfig) -> list[Commune]:
    return list(config.communes) if config.communes else load_communes()


def _is_town(commune: Commune) -> bool:
    return commune.unit_type in ("thị trấn", "phường")


def _is_weekend(config: SimulationConfig, day: int) -> bool:
    return (config.first_day + timedelta(days=day)).weekday() >= 5


def _venue_counts(commune: Commune, config: SimulationConfig, rng: np.random.Generator) -> dict[str, int]:
    if config.venues_per_commune is not None:
        return dict(config.venues_per_commune)
    column = 1 if _is_town(commune) else 0
    counts = {}
    for code, row in _venue_table().items():
        base, extra = row.counts[column]
        counts[code] = base + int(rng.integers(0, extra + 1)) if extra else base
    return counts


def _plan_venues(
    communes: list[Commune], config: SimulationConfig, rng: np.random.Generator
) -> list[tuple[str, str, str, int]]:
    """(name, category, commune_code, capacity) for every standing venue, commune by commune."""
    used: set[str] = set()
    route = 0
    specs: list[tuple[str, str, str, int]] = []
    for commune in communes:
        town = _is_town(commune)
        for category, count in _venue_counts(commune, config, rng).items():
            for k in range(count):
                if category == "public_transport":
                    route += 1
                    name = f"Xe buýt tuyến {route:02d}"
                else:
                    name = _venue_name(category, commune, k, town)
                specs.append((_unique(name, commune, used), category, commune.commune_code, _capacity(category)))
        if config.venues_per_commune is None:
            for category, name in _LANDMARKS.get(commune.name_vi, ()):
                specs.append((_unique(name, commune, used), category, commune.commune_code, _capacity(category)))
    return specs


def _venue_name(category: str, commune: Commune, k: int, town: bool) -> str:
    joined = (_TOWN_NAMES.get(category) if town else None) or _NAMES.get(category)
    pool = joined.split("|") if joined else [load_categories()[category].name_vi + " {c}"]
    template = pool[k % len(pool)]
    return template.format(c=commune.name_vi, u=commune.unit_type, d=commune.district_name_vi)


def _unique(name: str, commune: Commune, used: set[str]) -> str:
    candidate = name if name not in used else f"{name} ({commune.name_vi})"
    n = 2
    while candidate in used:
        candidate = f"{name} ({commune.name_vi}) {n}"
        n += 1
    used.add(candidate)
    return candidate


def _plan_gatherings(
    communes: list[Commune], config: SimulationConfig, rng: np.random.Generator
) -> list[tuple[tuple[str, str, str, int], tuple[int, int, int]]]:
    """Weddings (mostly at lunch, more at weekends) and funerals, each a venue used on one day."""
    plans = []
    for day in range(config.days):
        when = config.first_day + timedelta(days=day)
        weekend = _is_weekend(config, day)
        for commune in communes:
            for kind, rate in (
                ("wedding", config.weddings_per_commune_day * (2.0 if weekend else 0.7)),
                ("funeral", config.funerals_per_commune_day),
            ):
                for _ in range(int(rng.poisson(rate))):
                    plans.append(_gathering_plan(kind, commune, when, day, rng))
    return plans


def _gathering_plan(
    kind: str, commune: Commune, when: date, day: int, rng: np.random.Generator
) -> tuple[tuple[str, str, str, int], tuple[int, int, int]]:
    host = " ".join(
        (
            str(rng.choice(_SURNAMES)),
            str(rng.choice(_MIDDLE_NAMES[:-1])),  # hosts and the deceased here are men ('ông', 'cụ ông')
            str(rng.choice(_GIVEN_NAMES[:8])),
        )
    )
    hamlet = str(rng.choice(_HAMLETS))
    stamp = f"{when.day:02d}/{when.month:02d}"
    if kind == "wedding":
        name = f"Đám cưới nhà ông {host}, thôn {hamlet}, {commune.name_vi} ({stamp})"
        guests = int(np.clip(rng.lognormal(np.log(120), 0.5), 30, 400))
        start = int(rng.integers(600, 661))
    else:
        name = f"Đám tang cụ ông {host}, thôn {hamlet}, {commune.name_vi} ({stamp})"
        guests = int(np.clip(rng.lognormal(np.log(70), 0.5), 20, 250))
        start = int(rng.integers(480, 841))
    capacity = int(np.ceil(guests * 1.2 / 50.0) * 50)
    return (name, kind, commune.commune_code, capacity), (day, start, guests)


def _make_people(
    communes: list[Commune], venues: list[Venue], config: SimulationConfig, rng: np.random.Generator
) -> list[Person]:
    n = config.population
    weights = np.array([4.0 if _is_town(c) else 1.0 for c in communes]) * rng.lognormal(0, 0.3, len(communes))
    home = rng.choice(len(communes), size=n, p=weights / weights.sum())
    role = rng.choice(len(ROLES), size=n, p=_ROLE_SHARES)
    phones = _phone_numbers(rng, n)
    id_kind = rng.choice(3, size=n, p=_ID_KIND_SHARES)
    citizen = _citizen_ids(rng, int((id_kind == 1).sum()))
    qr = _personal_qr_ids(rng, int((id_kind == 2).sum()))
    ids = np.array(phones, dtype=object)
    ids[id_kind == 1] = citizen
    ids[id_kind == 2] = qr
    pickers = _pickers(venues, communes, config.seed)
    anchors = _assign_anchors(role, home, pickers, rng)
    codes = [c.commune_code for c in communes]
    return [
        Person(pid, phone, codes[h], ROLES[r], venues[a].venue_id if a >= 0 else None)
        for pid, phone, h, r, a in zip(
            ids.tolist(), phones, home.tolist(), role.tolist(), anchors.tolist(), strict=True
        )
    ]


def _phone_numbers(rng: np.random.Generator, n: int) -> list[str]:
    numbers = rng.choice(len(_PHONE_PREFIX_DIGITS) * 10**8, size=n, replace=False)
    return [f"0{_PHONE_PREFIX_DIGITS[x // 10**8]}{x % 10**8:08d}" for x in numbers.tolist()]


def _citizen_ids(rng: np.random.Generator, n: int) -> list[str]:
    # 12-digit CCCD: province code, a century/sex digit (0-3), birth year (2 digits), 6-digit serial.
    tails = rng.choice(4 * 10**8, size=n, replace=False)
    return [f"{_TUYEN_QUANG_CCCD_PREFIX}{x:09d}" for x in tails.tolist()]


def _personal_qr_ids(rng: np.random.Generator, n: int) -> list[str]:
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < n:
        raw = rng.bytes(8 * (n - len(ids)))
        for i in range(0, len(raw), 8):
            qr = f"QR-{raw[i : i + 8].hex()}"
            if qr not in seen:
                seen.add(qr)
                ids.append(qr)
    return ids


def _assign_anchors(
    role: np.ndarray, home: np.ndarray, pickers: dict[str, _Picker], rng: np.random.Generator
) -> np.ndarray:
    """Venue index of each person's workplace (workers), school (students) or stall (traders); -1 if none."""
    anchors = np.full(len(role), -1, dtype=np.int64)
    workers = np.flatnonzero(role == ROLES.index("worker"))
    places = [c for c in _WORKPLACES if c in pickers]
    if places and len(workers):
        w = np.array([_WORKPLACES[c][0] for c in places])
        kind = rng.choice(len(places), size=len(workers), p=w / w.sum())
        for j, category in enumerate(places):
            who = workers[kind == j]
            anchors[who] = pickers[category].pick(rng, home[who], _WORKPLACES[category][1])
    for role_name, category, local in (
        ("student", "school", _SCHOOL_LOCAL_SHARE),
        ("trader", "market", _STALL_LOCAL_SHARE),
    ):
        who = np.flatnonzero(role == ROLES.index(role_name))
        if category in pickers and len(who):
            anchors[who] = pickers[category].pick(rng, home[who], local)
    return anchors


# ---------------------------------------------------------------------------------------------------
# Venue choice


@dataclass(frozen=True)
class _Picker:
    """Weighted choice of a venue of one category, in a given commune or anywhere in the district."""

    venues: np.ndarray  # venue indices, grouped by commune
    local_keys: np.ndarray  # commune position + cumulative weight within that commune (ends at c + 1)
    has_local: np.ndarray  # per commune: has at least one venue of this category
    global_cum: np.ndarray  # cumulative normalised weight over `venues` (ends at 1)

    @classmethod
    def build(cls, venues: np.ndarray, commune: np.ndarray, weight: np.ndarray, n_communes: int) -> _Picker:
        order = np.lexsort((venues, commune))
        venues, commune, weight = venues[order], commune[order], weight[order]
        totals = np.bincount(commune, weights=weight, minlength=n_communes)
        within = np.empty(len(venues))
        for c in np.unique(commune).tolist():
            sel = commune == c
            within[sel] = np.cumsum(weight[sel]) / totals[c]
            within[np.flatnonzero(sel)[-1]] = 1.0  # exact end, so c + u (u < 1) always lands inside c
        global_cum = np.cumsum(weight) / weight.sum()
        global_cum[-1] = 1.0
        return cls(venues, commune + within, totals > 0, global_cum)

    def pick(self, rng: np.random.Generator, communes: np.ndarray, local_share: float) -> np.ndarray:
        """One venue index per entry of `communes`; local with `local_share` when the commune has one."""
        n = len(communes)
        u = rng.random(n)
        local = (rng.random(n) < local_share) & self.has_local[communes]
        slot = np.searchsorted(self.global_cum, u, side="right")
        slot[local] = np.searchsorted(self.local_keys, communes[local] + u[local], side="right")
        return self.venues[slot]


def _pickers(venues: list[Venue], communes: list[Commune], seed: int) -> dict[str, _Picker]:
    """Pickers for every standing category; popularity is lognormal, town venues draw more people."""
    position = {c.commune_code: i for i, c in enumerate(communes)}
    town = {c.commune_code for c in communes if _is_town(c)}
    popularity = np.random.default_rng([seed, 1]).lognormal(0.0, _POPULARITY_SIGMA, len(venues))
    by_category: dict[str, list[int]] = {}
    for i, v in enumerate(venues):
        if v.category not in GATHERING_CATEGORIES and v.commune_code in position:
            by_category.setdefault(v.category, []).append(i)
    pickers = {}
    for category, members in by_category.items():
        idx = np.array(members)
        commune = np.array([position[venues[i].commune_code] for i in members])
        boost = np.array([_TOWN_POPULARITY if venues[i].commune_code in town else 1.0 for i in members])
        pickers[category] = _Picker.build(idx, commune, popularity[idx] * boost, len(communes))
    return pickers


# ---------------------------------------------------------------------------------------------------
# Day-by-day generation


@dataclass(frozen=True, slots=True)
class _GatheringIx:
    day: int
    venue: int
    commune: int
    start_minute: int
    guests: int
    category: str


@dataclass(frozen=True)
class _Index:
    """Array views of a district used by the generator (built once per run)."""

    home: np.ndarray  # commune position per person
    role: np.ndarray  # ROLES index per person
    anchor: np.ndarray  # venue index per person, -1 if none
    person_ids: np.ndarray  # object array of bytes
    venue_ids: np.ndarray  # object array of bytes
    pickers: dict[str, _Picker]
    residents: list[np.ndarray]  # person indices per commune position
    gatherings: list[_GatheringIx]
    standing: np.ndarray  # venue indices that are not weddings/funerals
    weekday: np.ndarray  # (roles, activities) chance
    weekend: np.ndarray
    activity_possible: np.ndarray  # per activity: its venues exist
    manual_share: np.ndarray  # per role

    @classmethod
    def build(cls, district: SimulatedDistrict) -> _Index:
        communes = _communes(district.config)
        position = {c.commune_code: i for i, c in enumerate(communes)}
        venue_pos = {v.venue_id: i for i, v in enumerate(district.venues)}
        people = district.people
        home = np.array([position.get(p.home_commune, 0) for p in people], dtype=np.int64)
        role = np.array([ROLES.index(p.role) if p.role in ROLES else 1 for p in people], dtype=np.int64)
        anchor = np.array([venue_pos.get(p.anchor_venue or "", -1) for p in people], dtype=np.int64)
        pickers = _pickers(district.venues, communes, district.config.seed)
        order = np.argsort(home, kind="stable")
        bounds = np.searchsorted(home[order], np.arange(len(communes) + 1))
        residents = [order[bounds[i] : bounds[i + 1]] for i in range(len(communes))]
        gatherings = [
            _GatheringIx(
                g.day,
                venue_pos[g.venue_id],
                position.get(district.venues[venue_pos[g.venue_id]].commune_code, 0),
                g.start_minute,
                g.guests,
                district.venues[venue_pos[g.venue_id]].category,
            )
            for g in district.gatherings
            if g.venue_id in venue_pos
        ]
        weekday, weekend = _routine_tables()
        possible = np.array([_activity_possible(a, pickers) for a in _ACTIVITIES], dtype=np.float64)
        manual = np.array([_MANUAL_SHARE.get(r, _MANUAL_SHARE_DEFAULT) for r in ROLES])
        return cls(
            home=home,
            role=role,
            anchor=anchor,
            person_ids=_objects([p.person_id.encode() for p in people]),
            venue_ids=_objects([v.venue_id.encode() for v in district.venues]),
            pickers=pickers,
            residents=residents,
            gatherings=gatherings,
            standing=np.array(
                [i for i, v in enumerate(district.venues) if v.category not in GATHERING_CATEGORIES],
                dtype=np.int64,
            ),
            weekday=weekday,
            weekend=weekend,
            activity_possible=possible,
            manual_share=manual,
        )


@dataclass(frozen=True, slots=True)
class _VenueRow:
    capacity: int
    counts: tuple[tuple[int, int], tuple[int, int]]  # (count, extra up to) for a commune, the town


@cache
def _venue_table() -> dict[str, _VenueRow]:
    def count(cell: str) -> tuple[int, int]:
        base, _, extra = cell.partition("+")
        return int(base), int(extra or 0)

    table = {}
    for row in _VENUE_TABLE.strip().splitlines()[1:]:
        code, capacity, commune, town = row.split()
        table[code] = _VenueRow(int(capacity), (count(commune), count(town)))
    return table


def _capacity(category: str) -> int:
    row = _venue_table().get(category)
    return row.capacity if row else 100


def _activity_possible(activity: _Activity, pickers: dict[str, _Picker]) -> bool:
    if activity.category == _BUS:
        return "public_transport" in pickers
    return activity.category == _ANCHOR or activity.category in pickers


@cache
def _routine_tables() -> tuple[np.ndarray, np.ndarray]:
    """(weekday, weekend) chance per (role, activity), parsed from _ROUTINES."""
    names = [a.name for a in _ACTIVITIES]
    weekday = np.zeros((len(ROLES), len(_ACTIVITIES)))
    weekend = np.zeros((len(ROLES), len(_ACTIVITIES)))
    header, *rows = _ROUTINES.strip().splitlines()
    roles = [ROLES.index(r) for r in header.split()[1:]]
    for row in rows:
        name, *cells = row.split()
        for r, cell in zip(roles, cells, strict=True):
            if cell != "-":
                wd, we = cell.split("/")
                weekday[r, names.index(name)] = float(wd)
                weekend[r, names.index(name)] = float(we)
    slots = np.array([a.slot for a in _ACTIVITIES])
    for table in (weekday, weekend):
        for s in range(_SLOTS):
            assert (table[:, slots == s].sum(axis=1) <= 1.0 + 1e-9).all(), "a slot's chances exceed 1"
    return weekday, weekend


@dataclass
class _Visits:
    person: np.ndarray
    venue: np.ndarray
    start: np.ndarray  # ms since the first simulated midnight
    end: np.ndarray
    no_checkout: np.ndarray  # relative chance of never scanning out

    @classmethod
    def concat(cls, parts: list[_Visits]) -> _Visits:
        if not parts:
            return cls(*(np.empty(0, dtype=np.int64) for _ in range(4)), np.empty(0))
        return cls(
            np.concatenate([p.person for p in parts]),
            np.concatenate([p.venue for p in parts]),
            np.concatenate([p.start for p in parts]),
            np.concatenate([p.end for p in parts]),
            np.concatenate([p.no_checkout for p in parts]),
        )


def _span(rng: np.random.Generator, lo: float, hi: float, n: int, skew: float = 1.0) -> np.ndarray:
    """n values in [lo, hi); skew > 1 favours the low end (most stays are short)."""
    return lo + (hi - lo) * rng.random(n) ** skew


def _visits(
    person: np.ndarray, venue: np.ndarray, start_min: np.ndarray, stay_min: np.ndarray, day: int, f: float
) -> _Visits:
    start = day * _DAY_MS + np.round(start_min * _MIN_MS).astype(np.int64)
    end = start + np.round(stay_min * _MIN_MS).astype(np.int64)
    return _Visits(person.astype(np.int64), venue.astype(np.int64), start, end, np.full(len(person), f))


def _activity_visits(
    ix: _Index, activity: _Activity, persons: np.ndarray, day: int, rng: np.random.Generator
) -> list[_Visits]:
    if activity.category == _ANCHOR:
        persons = persons[ix.anchor[persons] >= 0]
        venues = ix.anchor[persons]
    elif activity.category == _BUS:
        return _bus_trips(ix, activity, persons, day, rng)
    else:
        venues = ix.pickers[activity.category].pick(rng, ix.home[persons], activity.local_share)
    n = len(persons)
    start = _span(rng, *activity.window, n)
    stay = _span(rng, *activity.stay, n, skew=1.7)
    return [_visits(persons, venues, start, stay, day, activity.no_checkout)]


def _bus_trips(
    ix: _Index, activity: _Activity, persons: np.ndarray, day: int, rng: np.random.Generator
) -> list[_Visits]:
    """A wait at the home commune's shelter, then a 30-90 minute ride on a public vehicle."""
    n = len(persons)
    t0 = _span(rng, *activity.window, n)
    wait = _span(rng, *_BUS_WAIT_MIN, n)
    ride = _span(rng, *activity.stay, n)
    vehicle = ix.pickers["public_transport"].pick(rng, ix.home[persons], activity.local_share)
    parts = [_visits(persons, vehicle, t0 + wait, ride, day, activity.no_checkout)]
    if "bus_station" in ix.pickers:
        shelter = ix.pickers["bus_station"].pick(rng, ix.home[persons], 0.9)
        parts.append(_visits(persons, shelter, t0, wait, day, _BUS_STATION_NO_CHECKOUT))
    return parts


def _gathering_visits(ix: _Index, day: int, rng: np.random.Generator) -> _Visits:
    """Guests, mostly from the host commune and each at one gathering a day, arrive within the hour."""
    busy = np.zeros(len(ix.home), dtype=bool)
    parts = []
    for g in ix.gatherings:
        if g.day != day:
            continue
        neighbours = ix.residents[g.commune][~busy[ix.residents[g.commune]]]
        k_local = min(len(neighbours), round(g.guests * _GATHERING_LOCAL_SHARE))
        local = rng.choice(neighbours, size=k_local, replace=False)
        busy[local] = True
        free = np.flatnonzero(~busy)
        others = rng.choice(free, size=min(len(free), g.guests - k_local), replace=False)
        busy[others] = True
        guests = np.sort(np.concatenate([local, others]))
        arrive = g.start_minute + _span(rng, 0, _GATHERING_ARRIVAL_MIN, len(guests), skew=1.5)
        stay = _span(rng, *_GATHERING_STAY[g.category], len(guests), skew=1.3)
        venue = np.full(len(guests), g.venue)
        parts.append(_visits(guests, venue, arrive, stay, day, _GATHERING_NO_CHECKOUT))
    return _Visits.concat(parts)


def _day_visits(ix: _Index, config: SimulationConfig, day: int, rng: np.random.Generator) -> _Visits:
    """Every visit of one day: gatherings first, then one activity (or none) per person and slot."""
    n = len(ix.home)
    table = ix.weekend if _is_weekend(config, day) else ix.weekday
    gatherings = _gathering_visits(ix, day, rng)
    at_gathering = np.zeros(n, dtype=bool)
    at_gathering[gatherings.person] = True
    parts = [gatherings]
    for slot in range(_SLOTS):
        acts = [i for i, a in enumerate(_ACTIVITIES) if a.slot == slot]
        cum = np.cumsum(table[:, acts], axis=1)[ix.role]
        choice = (rng.random(n)[:, None] >= cum).sum(axis=1)  # == len(acts): nothing in this slot
        if slot == 1:
            choice[at_gathering] = len(acts)  # the wedding or funeral replaces the day's activity
        for j, a in enumerate(acts):
            persons = np.flatnonzero(choice == j)
            if len(persons) and ix.activity_possible[a]:
                parts.extend(_activity_visits(ix, _ACTIVITIES[a], persons, day, rng))
    return _Visits.concat(parts)


@dataclass
class _Scans:
    person: np.ndarray
    venue: np.ndarray
    time: np.ndarray  # ms since the first simulated midnight
    direction: np.ndarray  # 0 in, 1 out
    mode: np.ndarray  # MODES index
    declaration: np.ndarray  # index into _declarations(), -1 for none


def _modes(ix: _Index, persons: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    u = rng.random(len(persons))
    manual = ix.manual_share[ix.role[persons]]
    return np.where(u < manual, 2, np.where(u < manual + _PERSONAL_QR_SHARE, 1, 0)).astype(np.int64)


def _make_scans(
    ix: _Index,
    config: SimulationConfig,
    visits: _Visits,
    seen: np.ndarray,
    day: int,
    rng: np.random.Generator,
) -> _Scans:
    """Check-ins, the check-outs people remember, repeat scans, and a few check-outs with no check-in."""
    n = len(visits.person)
    factor = visits.no_checkout
    # Scale the per-activity factors so the overall missing share matches the config.
    p_missing = np.clip(config.missing_checkout_share * factor / factor.mean(), 0, 1) if n else factor
    has_out = rng.random(n) >= p_missing
    repeat = rng.random(n) < config.double_scan_share
    mode = _modes(ix, visits.person, rng)
    stay = visits.end - visits.start
    # The repeat comes 30 s to 5 min after the check-in, always before the check-out.
    latest = np.minimum(300_000, stay[repeat] // 2)
    repeat_at = visits.start[repeat] + 30_000 + (rng.random(len(latest)) * (latest - 30_000)).astype(np.int64)
    persons = [visits.person, visits.person[has_out], visits.person[repeat]]
    venues = [visits.venue, visits.venue[has_out], visits.venue[repeat]]
    times = [visits.start, visits.end[has_out], repeat_at]
    modes = [mode, mode[has_out], mode[repeat]]
    n_in = n + int(repeat.sum())
    n_genuine = n_in + int(has_out.sum())
    k = int(rng.binomial(n_genuine, config.unmatched_checkout_share)) if n_genuine else 0
    if k:
        person, venue, time = _unmatched_checkouts(ix, seen, k, day, rng)
        persons.append(person)
        venues.append(venue)
        times.append(time)
        modes.append(_modes(ix, person, rng))
    time = np.concatenate(times)
    direction = np.ones(len(time), dtype=np.int64)
    direction[:n] = 0
    direction[n + int(has_out.sum()) : n + int(has_out.sum()) + int(repeat.sum())] = 0
    whole = rng.random(len(time)) >= _MS_PRECISION_SHARE
    time[whole] -= time[whole] % 1000
    declaration = np.full(len(time), -1, dtype=np.int64)
    declares = (direction == 0) & (rng.random(len(time)) < _DECLARATION_SHARE)
    # Almost everyone answers 'no' to every question; a few tick a symptom or an F0 contact.
    variant = np.where(rng.random(len(time)) < 0.97, 0, rng.integers(1, 8, size=len(time)))
    declaration[declares] = variant[declares]
    return _Scans(np.concatenate(persons), np.concatenate(venues), time, direction, np.concatenate(modes), declaration)


def _unmatched_checkouts(
    ix: _Index, seen: np.ndarray, k: int, day: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Up to k check-outs by people never seen at that venue before (`seen` is sorted), so none is open."""
    n_venues = len(ix.venue_ids)
    people: list[np.ndarray] = []
    venues: list[np.ndarray] = []
    found = 0
    for _ in range(20):  # a tiny, saturated district may run out of fresh pairs
        if found >= k or not len(ix.standing):
            break
        person = rng.integers(0, len(ix.home), size=2 * k + 8)
        venue = ix.standing[rng.integers(0, len(ix.standing), size=2 * k + 8)]
        keys = person * n_venues + venue
        at = np.minimum(np.searchsorted(seen, keys), max(len(seen) - 1, 0))
        fresh = seen[at] != keys if len(seen) else np.ones(len(keys), dtype=bool)
        people.append(person[fresh])
        venues.append(venue[fresh])
        found += int(fresh.sum())
    person = np.concatenate([np.empty(0, dtype=np.int64), *people])[:k]
    venue = np.concatenate([np.empty(0, dtype=np.int64), *venues])[:k]
    time = day * _DAY_MS + np.round(_span(rng, 360, 1320, len(person)) * _MIN_MS).astype(np.int64)
    return person, venue, time


def _objects(items: list[bytes]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _uuid4s(rng: np.random.Generator, n: int) -> list[bytes]:
    """n random UUID4 strings from the seeded generator, vectorised (uuid.UUID per event is ~5 us)."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    digits = np.empty((n, 32), dtype=np.uint8)
    digits[:, 0::2] = hexdigits[raw >> 4]
    digits[:, 1::2] = hexdigits[raw & 0x0F]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    text[:, [i for i in range(36) if i not in (8, 13, 18, 23)]] = digits
    return text.view("S36").ravel().tolist()


def _local_times(first_day: date, time_ms: np.ndarray) -> np.ndarray:
    """Local wall-clock ISO text (bytes, no offset): whole seconds, or milliseconds when present.

    Digits are written into a byte matrix; numpy's datetime_as_string was a quarter of the run time.
    """
    n = len(time_ms)
    out = np.empty(n, dtype=object)
    if not n:
        return out
    day = time_ms // _DAY_MS
    first = int(day.min())
    dates = [(first_day + timedelta(days=d)).isoformat().encode() for d in range(first, int(day.max()) + 1)]
    text = np.empty((n, 23), dtype=np.uint8)
    text[:, :10] = np.frombuffer(b"".join(dates), dtype=np.uint8).reshape(-1, 10)[day - first]
    rest = time_ms % _DAY_MS
    # (column, value, digits) of "YYYY-MM-DDTHH:MM:SS.mmm" after the date
    for col, value, width in (
        (11, rest // 3_600_000, 2),
        (14, rest // 60_000 % 60, 2),
        (17, rest // 1_000 % 60, 2),
        (20, rest % 1_000, 3),
    ):
        for k in range(width):
            text[:, col + k] = 48 + value // 10 ** (width - 1 - k) % 10
    text[:, [10, 13, 16, 19]] = np.frombuffer(b"T::.", dtype=np.uint8)
    whole = rest % 1_000 == 0
    out[whole] = np.ascontiguousarray(text[whole, :19]).view("S19").ravel().tolist()
    out[~whole] = text[~whole].view("S23").ravel().tolist()
    return out


def _declarations() -> list[bytes]:
    return [orjson.dumps({"fever": bool(i & 1), "cough": bool(i & 2), "contact_f0": bool(i & 4)}) for i in range(8)]


def _format_lines(ix: _Index, scans: _Scans, times: np.ndarray, scan_ids: list[bytes]) -> list[bytes]:
    declarations = _objects([*_declarations(), b""])  # index -1 -> no declaration
    directions = _objects([b"in", b"out"])
    modes = _objects([m.encode() for m in MODES])
    return [
        _LINE_WITH_DECLARATION % (s, v, p, d, t, m, v, x) if x else _LINE % (s, v, p, d, t, m, v)
        for s, v, p, d, t, m, x in zip(
            scan_ids,
            ix.venue_ids[scans.venue].tolist(),
            ix.person_ids[scans.person].tolist(),
            directions[scans.direction].tolist(),
            times.tolist(),
            modes[scans.mode].tolist(),
            declarations[scans.declaration].tolist(),
            strict=True,
        )
    ]


def _bad_record(kind: str, record: dict[str, object], epoch_s: float, rng: np.random.Generator) -> bytes:
    """One record that breaks the contract in the way `kind` names."""

    def pick(options: tuple[object, ...]) -> object:
        return options[int(rng.integers(0, len(options)))]

    local = str(record["event_time"])[:-6]  # without the +07:00
    if kind == "malformed_json":
        full = orjson.dumps(record)
        return full[: int(rng.integers(1, len(full) - 1))]  # a cut-off line
    if kind == "missing_field":
        del record[str(pick(REQUIRED_FIELDS))]
    elif kind == "bad_direction":
        record["direction"] = pick(("enter", "exit", "", "vào", "ra", "checkin"))
    elif kind == "bad_time":
        day, clock = local[:10], local[11:19]
        record["event_time"] = pick(
            (f"{day[8:10]}/{day[5:7]}/{day[:4]} {clock}", f"{day}T25:61:00+07:00", "hôm qua", "")
        )
    elif kind == "offsetless_time":
        record["event_time"] = pick((local, local.replace("T", " ")))
    elif kind == "unknown_venue":
        venue_id = f"VN{int(rng.integers(_VENUE_ID_RANGE[1], 10_000_000))}"
        record["venue_id"] = venue_id
        record["scanner_id"] = f"S-{venue_id}"
    elif kind == "wrong_type":
        field_name = str(pick(("person_id", "venue_id", "event_time", "direction", "declaration", "scan_id")))
        person = str(record["person_id"])
        record[field_name] = {
            "person_id": int(person[3:], 16) if person.startswith("QR-") else int(person),
            "venue_id": int(str(record["venue_id"])[2:]),
            "event_time": round(epoch_s),
            "direction": True,
            "declaration": "không sốt",
            "scan_id": None,
        }[field_name]
    elif kind == "bad_mode":
        record["mode"] = pick(("bluetooth", "zalo", "", "QR"))
    return orjson.dumps(record)


def _bad_records(
    ix: _Index,
    config: SimulationConfig,
    scans: _Scans,
    times: np.ndarray,
    base: np.ndarray,
    rng: np.random.Generator,
) -> list[bytes]:
    scan_ids = _uuid4s(rng, len(base))
    kinds = rng.integers(0, len(BAD_RECORD_KINDS), size=len(base))
    assert config.start is not None
    epoch = config.start.timestamp()
    out = []
    for i, b, kind in zip(range(len(base)), base.tolist(), kinds.tolist(), strict=True):
        venue_id = ix.venue_ids[scans.venue[b]].decode()
        record: dict[str, object] = {
            "scan_id": scan_ids[i].decode(),
            "venue_id": venue_id,
            "person_id": ix.person_ids[scans.person[b]].decode(),
            "direction": ("in", "out")[scans.direction[b]],
            "event_time": times[b].decode() + "+07:00",
            "mode": MODES[scans.mode[b]],
            "scanner_id": f"S-{venue_id}",
        }
        out.append(_bad_record(BAD_RECORD_KINDS[kind], record, epoch + scans.time[b] / 1000, rng))
    return out


def _day_records(
    ix: _Index, config: SimulationConfig, scans: _Scans, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(delivery time, line) for every record of a day: scans, their retries, and bad records."""
    m = len(scans.time)
    times = _local_times(config.first_day, scans.time)
    lines = _format_lines(ix, scans, times, _uuid4s(rng, m))
    max_late = config.max_late_minutes * _MIN_MS
    late = rng.random(m) < config.late_share
    delay = np.where(
        late,
        _span(rng, min(_MIN_MS, max_late), max_late, m),
        _span(rng, 0, min(_LATENCY_MS, max_late), m),
    )
    delivery = scans.time + delay.astype(np.int64)
    # A retry repeats the bytes a little later, still within the lateness bound.
    retry = np.flatnonzero(rng.random(m) < config.retry_share)
    retry_at = np.maximum(
        delivery[retry],
        np.minimum(
            delivery[retry] + _span(rng, *_RETRY_DELAY_MS, len(retry)).astype(np.int64),
            scans.time[retry] + max_late,
        ),
    )
    k_bad = int(rng.binomial(m, config.bad_record_share)) if m else 0
    base = rng.integers(0, max(m, 1), size=k_bad)
    bad = _bad_records(ix, config, scans, times, base, rng)
    bad_at = delivery[base] + rng.integers(0, 1000, size=k_bad)
    keys = np.concatenate([delivery, retry_at, bad_at])
    all_lines = _objects(lines + [lines[i] for i in retry.tolist()] + bad)
    return keys, all_lines


def _delivered_days(district: SimulatedDistrict) -> Iterator[list[bytes]]:
    """One list per simulated day in delivery order; late records cross midnight into the next list."""
    config = district.config
    ix = _Index.build(district)
    n_venues = len(district.venues)
    seen = np.empty(0, dtype=np.int64)  # (person, venue) pairs with any event so far
    pending_keys = np.empty(0, dtype=np.int64)
    pending = _objects([])
    for day in range(config.days):
        rng = np.random.default_rng([config.seed, 2, day])  # each day its own stream
        visits = _day_visits(ix, config, day, rng)
        seen = np.union1d(seen, visits.person * n_venues + visits.venue)
        scans = _make_scans(ix, config, visits, seen, day, rng)
        keys, lines = _day_records(ix, config, scans, rng)
        keys = np.concatenate([pending_keys, keys])
        lines = np.concatenate([pending, lines])
        order = np.argsort(keys, kind="stable")
        keys, lines = keys[order], lines[order]
        cut = len(keys) if day == config.days - 1 else int(np.searchsorted(keys, (day + 1) * _DAY_MS))
        yield lines[:cut].tolist()
        pending_keys, pending = keys[cut:], lines[cut:]


def _rebatch(chunks: Iterable[list[bytes]], size: int) -> Iterator[list[bytes]]:
    buffer: list[bytes] = []
    for chunk in chunks:
        buffer.extend(chunk)
        if len(buffer) >= size:
            full = len(buffer) - len(buffer) % size
            for i in range(0, full, size):
                yield buffer[i : i + size]
            buffer = buffer[full:]
    if buffer:
        yield buffer
