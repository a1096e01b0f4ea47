"""The API's shell over the embedded runtime: every request authenticated, authorized, and (for traces,
exports and re-identification) audited; store access serialised because one process owns the store.

ApiService is assembled from one part per route family (api/services/<family>.py mirrors
api/routes/<family>.py) over a shared core (api/services/core.py) and sign-in (api/services/auth.py); the
parts reach the store only through the typed functions of queries/ and sinks/. The decisions are written
where they are made:
- one lock around the store, taken per statement by a trace job (api/services/core.py, sinks/locked.py);
- traces as jobs on one background thread, results kept pseudonymous (api/services/cases.py);
- a verified token remembered for five minutes, so scrypt runs once per token (api/services/auth.py).
"""

from __future__ import annotations

from qrtrace.api.services.auth import TOKEN_CACHE_SECONDS, AuthService
from qrtrace.api.services.cases import CaseService
from qrtrace.api.services.census import CensusService
from qrtrace.api.services.checkins import CheckinService
from qrtrace.api.services.core import TOKEN_FILE_CHECK_S, IngestStats
from qrtrace.api.services.errors import Conflict, NotFound, TooLarge, Unavailable
from qrtrace.api.services.exposure_sites import ExposureSiteService
from qrtrace.api.services.follow_up import FollowUpService
from qrtrace.api.services.jobs import MAX_TRACE_JOBS_KEPT, TraceJob
from qrtrace.api.services.notifications import NotificationService
from qrtrace.api.services.operations import OperationsService
from qrtrace.api.services.paper import PaperLogService
from qrtrace.api.services.reports import ReportService
from qrtrace.api.services.venues import VenueService
from qrtrace.sinks.locked import LockedStore

__all__ = [
    "MAX_TRACE_JOBS_KEPT",
    "TOKEN_CACHE_SECONDS",
    "TOKEN_FILE_CHECK_S",
    "ApiService",
    "Conflict",
    "IngestStats",
    "LockedStore",
    "NotFound",
    "TooLarge",
    "TraceJob",
    "Unavailable",
]


class ApiService(AuthService, VenueService, CheckinService, CaseService, ReportService, OperationsService,
                 ExposureSiteService, NotificationService, PaperLogService, CensusService, FollowUpService):
    """Everything the routes do, with the caller (a Principal) as the first argument."""
