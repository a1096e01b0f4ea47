"""The simulator's contract: what to simulate (SimulationConfig), what it lays out (Person, Gathering,
SimulatedDistrict), the names of the ingest contract it writes (MODES, REQUIRED_FIELDS, BAD_RECORD_KINDS),
and the calendar (simulated days are local +07:00 days)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

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

# Registered venue ids are VN1000000..VN8999999; VN9xxxxxx is reserved for 'unknown venue' records.
_VENUE_ID_RANGE = (1_000_000, 9_000_000)


def _default_start(days: int) -> datetime:
    """Local midnight `days` days before today, so the last simulated day is yesterday."""
    today = datetime.now(VN_TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days)


# A market's sections, in the order `SimulationConfig.market_zones` takes them.
MARKET_ZONE_NAMES = ("Khu hàng khô", "Khu thực phẩm tươi sống", "Khu rau quả", "Khu quần áo", "Khu ăn uống",
                     "Khu gia dụng")  # fmt: skip


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
    # Sections per market (venue zones, each with its own QR; a visit is in one section). 0 = no zones: the
    # default, so the output is byte-identical to what it was before zones. The demo may turn it on.
    market_zones: int = 0

    def __post_init__(self) -> None:
        if self.days < 1:
            raise InputError(f"The simulation needs at least one day, got days={self.days}.")
        if self.population < 1:
            raise InputError(f"The population must be at least 1, got {self.population}.")
        if not 0 <= self.market_zones <= len(MARKET_ZONE_NAMES):
            raise InputError(f"market_zones must be between 0 and {len(MARKET_ZONE_NAMES)}, got {self.market_zones}.")
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
