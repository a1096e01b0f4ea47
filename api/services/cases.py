"""Cases and traces (api/routes/cases.py): declare a positive case, run a trace of one case or many as a job,
read its result, and export the call list.

Decision: traces run as jobs on one background thread, so the console can show hop-by-hop progress. Results
are kept pseudonymous in `trace_runs`; identifiers and phone numbers are looked up when a role allowed to
re-identify reads them, and that read is audited with its stated purpose.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator, Sequence

import numpy as np
import orjson

from qrtrace import render
from qrtrace.access import Action, Principal, Scope, authorize
from qrtrace.api import views
from qrtrace.api.services.core import ServiceCore, stated_purpose
from qrtrace.api.services.errors import Conflict, NotFound, TooLarge
from qrtrace.api.services.jobs import MAX_TRACE_JOBS_KEPT, TraceJob
from qrtrace.errors import InputError
from qrtrace.queries.cases import declared_cases, recent_cases
from qrtrace.queries.reidentify import Identity, reidentify
from qrtrace.queries.trace import CaseQuery, TraceResult, TraceRules, exposure_rows
from qrtrace.queries.trace_runs import StoredRun, case_exposures, exposure_people, recent_runs, stored_run
from qrtrace.sinks.audit import AuditLog, now_us
from qrtrace.sinks.trace_runs import drop_exposures, write_exposures, write_run

log = logging.getLogger("qrtrace.api")


class _PseudonymsOnly(dict):
    """render.trace_dict looks people up here: every pseudonym stands for itself."""

    def __missing__(self, key: str) -> Identity:
        return Identity(key, "")


class CaseService(ServiceCore):
    """The case and trace routes' decisions."""

    # -- cases --------------------------------------------------------------------------------------------
    def declare_case(self, who: Principal, case_id: str, person_id: str, from_us: int, to_us: int) -> dict:
        """Declare a positive case with its infectious window (audited); Conflict if the id is taken."""
        authorize(who, Action.DECLARE_CASE, Scope(), self.geo)
        if to_us < from_us:
            raise InputError("The infectious window ends before it starts; 'to' must be after 'from'.")
        with self._lock:
            if declared_cases(self.rt.store, [case_id]):
                raise Conflict(f"Case {case_id} is already declared; choose another case_id.")
            person = self.rt.declare_case(case_id, person_id, from_us, to_us, actor=who.name)
            self.rt.audit.as_actor(who.name).record("declare_case", case_id, person, "positive case declared",
                                                    from_us=from_us, to_us=to_us)  # fmt: skip
        return {"case_id": case_id, "declared": True}

    def list_cases(self, who: Principal, limit: int) -> list[dict]:
        """The `limit` most recently declared cases, newest first."""
        authorize(who, Action.RUN_TRACE, Scope(), self.geo)
        with self._lock:
            cases = recent_cases(self.rt.store, limit)
        tz = self.settings.display_tz
        return [
            {"case_id": c.case_id, "infectious_from": render.iso(c.infectious_from_us, tz),
             "infectious_to": render.iso(c.infectious_to_us, tz), "declared_at": render.iso(c.declared_at_us, tz),
             "declared_by": c.declared_by}
            for c in cases
        ]  # fmt: skip

    # -- running a trace ----------------------------------------------------------------------------------
    def start_trace(self, who: Principal, case_ids: list[str], rules: TraceRules, purpose: str) -> TraceJob:
        """Start a trace of declared cases as a job on the trace thread; NotFound names a case not declared."""
        authorize(who, Action.RUN_TRACE, Scope(), self.geo)
        wanted = list(dict.fromkeys(case_ids))
        if len(wanted) > self.settings.trace_max_cases:
            raise TooLarge(f"A trace run takes at most {self.settings.trace_max_cases:,} cases "
                           f"(QRTRACE_TRACE_MAX_CASES), not {len(wanted):,}; split the cases into several runs.")
        with self._lock:
            found = declared_cases(self.rt.store, wanted)
        missing = [c for c in wanted if c not in found]
        if missing:
            raise NotFound(f"No declared case {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1
                           else "") + "; declare it first with POST /api/cases.")  # fmt: skip
        job = TraceJob(f"tr-{secrets.token_hex(6)}", who.name, wanted, rules.depth, purpose, now_us())
        with self._jobs_lock:
            self._jobs[job.trace_id] = job
            if len(self._jobs) > MAX_TRACE_JOBS_KEPT:
                for old in [j for j in self._jobs if self._jobs[j].status != "running"][:50]:
                    del self._jobs[old]
        self._executor.submit(self._run_trace, job, [found[c] for c in wanted], rules)
        return job

    def _run_trace(self, job: TraceJob, queries: list[CaseQuery], rules: TraceRules) -> None:
        """Trace a chunk of cases at a time and store each chunk's exposures as rows before the next chunk
        (`trace_exposures`), keeping only per-case counts: memory is one chunk's, whatever the batch."""

        def progress(done: float) -> None:
            job.hops_done = max(job.hops_done, min(job.depth, int(done * job.depth)))

        store = self._locked_store
        contacts = [0] * len(queries)
        exposures = [0] * len(queries)
        close = [0] * len(queries)
        try:
            chunks = self.rt.trace_chunks(queries, rules, job.purpose, AuditLog(store, job.actor), progress, store)
            for first, batch in chunks:
                write_exposures(store, job.trace_id, job.started_at_us, exposure_rows(batch, first))
                for case, count in enumerate(np.bincount(batch.contacts["case"], minlength=len(batch.cases))):
                    contacts[first + case] = int(count)
                for case, count in enumerate(np.bincount(batch.exposures["case"], minlength=len(batch.cases))):
                    exposures[first + case] = int(count)
                closes = np.bincount(batch.contacts["case"], weights=batch.contacts["risk"], minlength=len(batch.cases))
                for case, count in enumerate(closes.tolist()):
                    close[first + case] = int(count)
            self._store_run(job, queries, rules, contacts, exposures, close)
            self._follow_up_run(job)
            job.contacts = sum(contacts)
            job.hops_done = job.depth
            job.status = "done"
        except Exception as exc:  # a job's failure is reported to its poller as a sentence, and logged
            log.exception("trace %s failed", job.trace_id)
            job.status = "failed"
            job.error = (str(exc) if isinstance(exc, InputError) else
                         f"The trace failed ({type(exc).__name__}); the server logged the details.")  # fmt: skip
            try:  # a failed run has no trace_runs row, so its rows are never read: drop them
                drop_exposures(store, job.trace_id)
            except Exception:
                log.exception("could not drop the rows of failed trace %s", job.trace_id)

    def _store_run(self, job: TraceJob, queries: list[CaseQuery], rules: TraceRules, contacts: list[int],
                   exposures: list[int], close: list[int]) -> None:  # fmt: skip
        """The run's row in `trace_runs`: per case the document header (case, window, rules, rule) and its
        counts (contacts, per tier, exposure rows); the contacts and exposures are rows of `trace_exposures`."""
        headers = []
        for q, n, rows, c in zip(queries, contacts, exposures, close, strict=True):
            header = render.trace_dict(TraceResult(q, rules, []), _PseudonymsOnly(), self.settings.display_tz)
            del header["contacts"]
            if rules.risk is not None:
                header["tiers"] = {"close": c, "casual": n - c}
            headers.append({**header, "contacts_count": n, "exposure_rows": rows})
        write_run(self._locked_store, job.trace_id, job.started_at_us, now_us(), job.actor, job.case_ids,
                  job.purpose, rules, headers)  # fmt: skip

    def _follow_up_run(self, job: TraceJob) -> None:
        """The finished run's contacts become follow-up records for their communes' health stations (issue 15;
        sinks/follow_up.py). Idempotent; a failure here is logged and leaves the trace itself done."""
        from qrtrace.sinks.follow_up import create_from_run

        try:
            create_from_run(self._locked_store, job.trace_id, AuditLog(self._locked_store, job.actor))
        except Exception:
            log.exception("could not create the follow-up records of trace %s", job.trace_id)

    # -- reading a trace ----------------------------------------------------------------------------------
    def trace_status(self, who: Principal, trace_id: str) -> dict:
        """A trace's progress (hops done of depth), or `done`; NotFound for no such trace."""
        authorize(who, Action.RUN_TRACE, Scope(), self.geo)
        with self._jobs_lock:
            job = self._jobs.get(trace_id)
        if job is not None and job.status != "done":
            return {"trace_id": trace_id, "status": job.status, "hops_done": job.hops_done, "depth": job.depth,
                    "error": job.error}  # fmt: skip
        run = self._load_run(trace_id)
        return {"trace_id": trace_id, "status": "done", "hops_done": run["depth"], "depth": run["depth"],
                "error": None}  # fmt: skip

    def _load_run(self, trace_id: str) -> dict:
        with self._lock:
            stored = stored_run(self.rt.store, trace_id)
        if stored is None:
            raise NotFound(f"No finished trace {trace_id}.")
        return run_view(stored)

    def _case_docs(self, run: dict, cases: Sequence[int]) -> Iterator[dict]:
        """The pseudonymous documents of the run's cases (by index), one case read at a time."""
        for i in cases:
            header = run["headers"][i]
            if run["docs"] is not None:
                yield run["docs"][i]
                continue
            header = {k: v for k, v in header.items() if k not in ("contacts_count", "exposure_rows")}
            yield render.trace_doc_from_rows(header, self._case_rows(run["trace_id"], i), self.settings.display_tz)

    def _case_rows(self, trace_id: str, case: int) -> dict:
        return case_exposures(self._locked_store, trace_id, case)

    def _run_people(self, who: Principal, run: dict, purpose: str) -> dict[str, views.Person] | None:
        """Identifiers and phones of everyone the run names, for a role allowed to re-identify (audited);
        None for other roles. One vault read for the run: bounded by the people, not the exposures."""
        if not self.may(who, Action.REIDENTIFY):
            return None
        if run["docs"] is not None:
            persons = views.pseudonyms_in(run["docs"])
        else:
            persons = exposure_people(self._locked_store, run["trace_id"]) | {h["case"] for h in run["headers"]}
        with self._lock:
            found = reidentify(self.rt.store, self.rt.vault, self.rt.audit.as_actor(who.name), sorted(persons),
                               ",".join(run["case_ids"]), purpose)  # fmt: skip
        return {p: views.Person(i.identifier, i.contact or None) for p, i in found.items()}

    def _job_list(self) -> list[TraceJob]:
        with self._jobs_lock:
            return list(self._jobs.values())

    def trace_result(self, who: Principal, trace_id: str, purpose: str, case_id: str | None = None) -> dict:
        """The cohort documents (all cases, or the one `case_id`); identifiers and phones only for roles
        allowed to re-identify, audited with the purpose the reader states (not the purpose of whoever ran
        the trace). A result of more than QRTRACE_TRACE_RESULT_MAX_ROWS exposures is refused with a sentence
        (read it per case, or download the call list, which streams)."""
        authorize(who, Action.RUN_TRACE, Scope(), self.geo)
        purpose = stated_purpose(purpose)
        run = self._load_run(trace_id)
        cases = list(range(len(run["headers"])))
        if case_id is not None:
            cases = [i for i in cases if run["headers"][i]["case_id"] == case_id]
            if not cases:
                raise NotFound(f"The trace {trace_id} has no case {case_id}.")
        rows = sum(run["headers"][i]["exposure_rows"] for i in cases)
        limit = self.settings.trace_result_max_rows
        if rows > limit:
            raise TooLarge(f"This result holds {rows:,} exposures, more than the {limit:,} one answer may hold "
                           "(QRTRACE_TRACE_RESULT_MAX_ROWS); read one case at a time (?case_id=...) or download "
                           "the call list.")  # fmt: skip
        docs = list(self._case_docs(run, cases))
        people = self._run_people(who, run, purpose)
        docs = views.show_people(docs, people)
        tz = self.settings.display_tz
        return {"trace_id": trace_id, "status": "done", "purpose": run["purpose"], "run_by": run["actor"],
                "started_at": render.iso(run["started_at_us"], tz),
                "finished_at": render.iso(run["finished_at_us"], tz),
                "cases": docs, "cohort": render.combined_cohort(docs) if len(docs) > 1 else None}  # fmt: skip

    def call_list(self, who: Principal, trace_id: str, fmt: str, purpose: str, lang: str) -> Iterator[bytes]:
        """The call list as pieces of bytes, built one case at a time (CSV streams; XLSX is written to a
        temporary file in write-only mode, split into sheets, then streamed). Audited before the first byte."""
        import os
        import tempfile

        from qrtrace.api import exports

        authorize(who, Action.EXPORT_CALL_LIST, Scope(), self.geo)
        purpose = stated_purpose(purpose)
        run = self._load_run(trace_id)
        total = sum(h["exposure_rows"] for h in run["headers"])
        if fmt == "xlsx" and total > self.settings.xlsx_max_rows:
            raise TooLarge(f"This call list has {total:,} rows, more than the {self.settings.xlsx_max_rows:,} an "
                           "XLSX download may hold (QRTRACE_XLSX_MAX_ROWS); download it as CSV.")  # fmt: skip
        people = self._run_people(who, run, purpose)
        tz = self.settings.display_tz
        # The existing order: by case id, then hop, first exposure and person as shown.
        order = sorted(range(len(run["headers"])), key=lambda i: run["headers"][i]["case_id"])

        def chunks() -> Iterator[list[tuple]]:
            for i in order:
                header = run["headers"][i]
                if run["docs"] is not None:
                    yield views.call_list_rows(views.show_people([run["docs"][i]], people))
                else:
                    yield exports.call_list_case_rows(header, self._case_rows(trace_id, i), people, tz)

        with self._lock:
            self.rt.audit.as_actor(who.name).record(
                "export_call_list", ",".join(run["case_ids"]), trace_id, purpose, format=fmt, rows=total,
                reidentified=people is not None,
            )  # fmt: skip
        if fmt != "xlsx":
            return exports.call_list_csv_stream(chunks(), lang)
        fd, path = tempfile.mkstemp(prefix="qrtrace-call-list-", suffix=".xlsx")  # 0600: it holds identifiers
        os.close(fd)
        try:
            exports.call_list_xlsx_file(chunks(), lang, path)
        except BaseException:
            os.unlink(path)
            raise
        return file_pieces(path)

    def rule_sets(self, who: Principal) -> list[dict]:
        """The shipped risk rule sets, for those who run traces."""
        import dataclasses

        from qrtrace.queries.risk import load_rule, shipped_rules

        authorize(who, Action.RUN_TRACE, Scope(), self.geo)
        return [dataclasses.asdict(load_rule(name)) for name in shipped_rules()]

    def list_traces(self, who: Principal, limit: int) -> list[dict]:
        """Traces running and finished (the `limit` newest finished), without their results."""
        authorize(who, Action.RUN_TRACE, Scope(), self.geo)
        with self._lock:
            runs = recent_runs(self.rt.store, limit)
        tz = self.settings.display_tz
        done = [
            {"trace_id": r.trace_id, "status": "done", "started_at": render.iso(r.started_at_us, tz),
             "run_by": r.actor, "case_ids": r.case_ids.split(","), "purpose": r.purpose}
            for r in runs
        ]  # fmt: skip
        running = [
            {"trace_id": j.trace_id, "status": j.status, "started_at": render.iso(j.started_at_us, tz),
             "run_by": j.actor, "case_ids": j.case_ids, "purpose": j.purpose}
            for j in self._job_list() if j.status != "done"
        ]  # fmt: skip
        return running + done


def run_view(stored: StoredRun) -> dict:
    """A stored run as the service reads it: its rules' depth, and per case the header (`headers`); runs
    stored by earlier versions hold whole documents (`docs`), newer ones per-case headers (rows elsewhere)."""
    rules = orjson.loads(stored.rules)
    result = orjson.loads(stored.result)
    docs = None if all("exposure_rows" in d for d in result) else result
    headers = result if docs is None else [{**d, "exposure_rows": sum(len(c["exposures"]) for c in d["contacts"])}
                                           for d in result]  # fmt: skip
    return {"trace_id": stored.trace_id, "actor": stored.actor, "case_ids": stored.case_ids.split(","),
            "purpose": stored.purpose, "depth": rules["depth"], "docs": docs, "headers": headers,
            "started_at_us": stored.started_at_us, "finished_at_us": stored.finished_at_us}  # fmt: skip


def file_pieces(path: str, size: int = 1 << 20) -> Iterator[bytes]:
    """A temporary file's bytes in pieces; the file is removed once read (or abandoned)."""
    import os

    try:
        with open(path, "rb") as fh:
            while piece := fh.read(size):
                yield piece
    finally:
        os.unlink(path)
