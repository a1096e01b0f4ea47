"""The model's data: activities and their time slots, the routines per role, where people work, the
standing-venue layout per commune and town, and the Vietnamese names of venues, hosts and hamlets."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

import numpy as np

from qrtrace.producers.simulator.model import ROLES

_ANCHOR = "anchor"  # the person's own workplace, school or market stall
_BUS = "bus"  # a bus_station scan, then a public_transport vehicle scan


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
