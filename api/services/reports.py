"""Reports for authorities (api/routes/reports.py): coverage per commune x category, the daily trend, and the
coverage export a district office sends upward (audited)."""

from __future__ import annotations

from qrtrace.access import Action, Principal, Role, Scope, authorize
from qrtrace.api import views
from qrtrace.api.services.core import ServiceCore, stated_purpose
from qrtrace.queries.coverage import daily_trend
from qrtrace.sinks.audit import now_us


class ReportService(ServiceCore):
    """The report routes' decisions, each narrowed to the caller's area (or one commune of it)."""

    def coverage(self, who: Principal, commune: str | None, as_of_us: int | None, lang: str | None = None) -> dict:
        """Coverage of the 24 h and 7 days before `as_of_us` (default now) in the caller's area."""
        visible = self._report_area(who, Action.READ_COVERAGE, commune)
        as_of = as_of_us if as_of_us is not None else now_us()
        with self._lock:
            day = self.rt.coverage(as_of, 1)
            week = self.rt.coverage(as_of, 7)
        return views.coverage_view(day, week, visible, lang or self.settings.lang)

    def _report_area(self, who: Principal, action: Action, commune: str | None) -> frozenset[str] | None:
        self._allowed(who, action)
        if commune is not None:
            authorize(who, action, Scope(commune_code=commune), self.geo)
            return frozenset({commune})
        return self.visible_communes(who)

    def trend(self, who: Principal, commune: str | None, days: int, as_of_us: int | None) -> list[dict]:
        """Active venues and scans per day for the `days` days before `as_of_us`, in the caller's area."""
        visible = self._report_area(who, Action.READ_COVERAGE, commune)
        as_of = as_of_us if as_of_us is not None else now_us()
        with self._lock:
            rows, first_day = self.rt.coverage_trend(as_of, days)
        return daily_trend(rows, visible, first_day, days)

    def coverage_export(self, who: Principal, commune: str | None, as_of_us: int | None, fmt: str, lang: str,
                        purpose: str) -> bytes:  # fmt: skip
        """The coverage report as XLSX or CSV, audited once the file is built."""
        from qrtrace.api import exports

        visible = self._report_area(who, Action.EXPORT_COVERAGE, commune)
        view = self.coverage(who, commune, as_of_us, lang)
        area = self._area_name(who, visible)
        if fmt == "xlsx":
            data = exports.coverage_xlsx(view, lang, area, self.settings.display_tz)
        else:
            data = exports.coverage_csv(view, lang)
        with self._lock:  # the file is built: only now is it an export
            self.rt.audit.as_actor(who.name).record("export_coverage", "", area, stated_purpose(purpose),
                                                    format=fmt, communes=len(view["communes"]))  # fmt: skip
        return data

    def _area_name(self, who: Principal, visible: frozenset[str] | None) -> str:
        communes = self._all_communes()
        if visible is not None and len(visible) == 1:
            return next((c["name_vi"] for c in communes if c["commune_code"] in visible), "")
        if who.role is Role.DISTRICT_OFFICER or visible is None:
            district = next((c["district_name_vi"] for c in communes
                             if who.district_code in (None, c["district_code"])), "")  # fmt: skip
            return district
        return ", ".join(sorted(c["name_vi"] for c in communes if c["commune_code"] in visible))

    def hotspots(self, who: Principal, commune: str | None, days: int, as_of_us: int | None, limit: int,
                 lang: str | None = None) -> dict:  # fmt: skip
        """Crowding hotspots of the `days` days before `as_of_us` (default now), read like coverage (the same
        roles), narrowed to the caller's area or one commune of it."""
        from qrtrace.hotspots_render import hotspots_dict

        visible = self._report_area(who, Action.READ_COVERAGE, commune)
        as_of = as_of_us if as_of_us is not None else now_us()
        with self._lock:
            report = self.rt.hotspots(as_of, days, visible, limit, lang or self.settings.lang)
        return hotspots_dict(report, self.settings.display_tz)
