"""API tier: the real FastAPI app over a real chDB store built by `qrtrace demo`, called in-process.

The store is made once per session (the demo district plus a second district, to catch scope leaks);
the app runs in this process, so this tier is its own pytest run (`make api`): chDB is one engine per
process.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qrtrace.access import Principal, Role
from qrtrace.api.app import create_app
from qrtrace.api.service import ApiService
from qrtrace.api.tokens import TokenFile
from qrtrace.settings import Settings
from qrtrace.sinks.audit import now_us
from tests.conftest import qrtrace_bin

pytestmark = pytest.mark.api

OTHER_DISTRICT = """commune_code,name_vi,unit_type,district_code,district_name_vi,province_code,province_name_vi
99901,Xã Thử Một,xã,999,Huyện Thử,08,Tuyên Quang
99902,Xã Thử Hai,xã,999,Huyện Thử,08,Tuyên Quang
"""
OTHER_VENUES = """venue_id,name,category,commune_code,capacity
OT-MARKET,Chợ xã Thử Một,market,99901,200
OT-SCHOOL,Trường xã Thử Hai,school,99902,300
"""
DAY_US = 86_400_000_000
# Check-ins the tests send are from ten days ago: inside the receiving window (the retention period,
# 21 days; a fixed date falls out of it three weeks later), and before the demo's simulated days, so they
# never join the demo case's cohort that tests compare against the demo's own trace.
RECENT_DAY = (datetime.now(UTC) - timedelta(days=10)).astimezone(timezone(timedelta(hours=7))).date().isoformat()


@dataclass
class World:
    """The demo store and one token per role (plus out-of-area and expired ones)."""

    store: Path
    settings: Settings
    tokens: dict[str, str]  # role or label -> token
    venue_id: str  # the demo scanner's (and venue owner's) venue
    commune_code: str  # the demo commune officer's commune
    district_code: str
    other_commune: str  # a commune of the demo district the commune officer may not see
    demo_trace: dict  # the demo's own exported trace (the CLI path), to compare the API against

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def _cli(*args: str, env: dict[str, str]) -> None:
    proc = subprocess.run([qrtrace_bin(), *args], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, f"qrtrace {' '.join(args)}: {proc.stderr}"


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("api")
    store = root / "store"
    keys = root / "keys" / "keys.json"
    token_file = root / "keys" / "tokens.json"
    env = {**os.environ, "QRTRACE_KEY_FILE": str(keys), "QRTRACE_TOKEN_FILE": str(token_file), "COLUMNS": "200"}
    env.pop("QRTRACE_STORE", None)
    _cli("demo", "--store", str(store), "--population", "2500", "--days", "3", "--reidentified-exports", env=env)
    (root / "other.csv").write_text(OTHER_DISTRICT, encoding="utf-8")
    (root / "other-venues.csv").write_text(OTHER_VENUES, encoding="utf-8")
    _cli("communes", "import", str(root / "other.csv"), "--store", str(store), env=env)
    _cli("venues", "import", str(root / "other-venues.csv"), "--store", str(store), env=env)
    tokens = json.loads((store / "demo-tokens.json").read_text())
    book = TokenFile(token_file)
    scanner = book.entries()[0]
    venue_id = scanner["venues"][0]
    commune = next(e["commune_code"] for e in book.entries() if e["role"] == "commune_officer")
    district = next(e["district_code"] for e in book.entries() if e["role"] == "district_officer")
    later = now_us() + DAY_US
    tokens["other_district_officer"] = book.issue(Principal("other-district", Role.DISTRICT_OFFICER,
                                                            district_code="999"), later).token  # fmt: skip
    tokens["other_venue_owner"] = book.issue(Principal("other-owner", Role.VENUE_OWNER,
                                                       venues=frozenset({"OT-MARKET"})), later).token  # fmt: skip
    tokens["expired"] = book.issue(Principal("expired-epi", Role.EPIDEMIOLOGIST), now_us() - 1).token
    tokens["other_health_station"] = book.issue(Principal("other-station", Role.HEALTH_STATION,
                                                          commune_code="99901"), later).token  # fmt: skip
    settings = Settings(store=str(store), key_file=keys, token_file=token_file, actor="api-tests",
                        notify_gateway=f"file:{root / 'notifications.jsonl'}")  # fmt: skip
    communes = [line.split(",")[0] for line in (Path(__file__).parents[2] / "qrtrace" / "data" /
                                                "son_duong_communes.csv").read_text().splitlines()[1:]]  # fmt: skip
    other = next(c for c in communes if c != commune)
    demo_trace = json.loads((store / "exports" / "trace-DEMO-F0-1.json").read_text())
    return World(store, settings, tokens, venue_id, commune, district, other, demo_trace)


@pytest.fixture(scope="session")
def service(world: World) -> ApiService:
    svc = ApiService(world.settings)
    yield svc
    svc.close()


@pytest.fixture(scope="session")
def client(service: ApiService) -> TestClient:
    with TestClient(create_app(service), raise_server_exceptions=False) as c:
        yield c


def counts(service: ApiService) -> dict[str, int]:
    """Rows per table that a refused request must leave unchanged."""
    tables = ("checkins", "dead_letters", "venues", "cases", "visits_by_venue", "identity_vault", "trace_runs")
    with service._lock:  # the store is the service's: read it under the service's lock
        return {t: service.rt.store.query(f"SELECT count() AS n FROM qrtrace.{t}")["n"][0] for t in tables}
