"""Run by test_trace_memory in its own process: a batch trace through the API service on a demo store,
under an address-space cap. Prints one JSON line (status, counts, peak RSS).

chDB maps about 3.2 GB of address space as soon as a store is open (its allocator arenas and thread
stacks), whatever is traced, so a fixed RLIMIT_AS would measure chDB, not the trace. The cap is therefore
the address space after opening the store plus a budget (argv[3], MB), set in this process before the
trace starts; the peak RSS (getrusage) is reported for the fixed limit the test checks."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from qrtrace.access import Principal, Role
from qrtrace.api.service import ApiService, TooLarge
from qrtrace.queries.trace import TraceRules
from qrtrace.settings import Settings
from qrtrace.stream_processors.batch import US_PER_DAY, US_PER_MINUTE


def _vm_size() -> int:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmSize:"))
    return int(line.split()[1]) * 1024


def main(store: str, key_dir: str, cases: int, budget_mb: int) -> None:
    settings = Settings(store=store, key_file=Path(key_dir) / "keys.json", token_file=Path(key_dir) / "tokens.json",
                        actor="memory-test")  # fmt: skip
    svc = ApiService(settings)
    cap = _vm_size() + budget_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    st = svc.rt.store
    end = st.query("SELECT max(end_us) AS e FROM qrtrace.visits_by_person")["e"][0]
    start = end - 2 * US_PER_DAY
    # The busiest people of the last two days: the heaviest cases the demo has.
    people = st.query("SELECT person, count() AS n FROM qrtrace.visits_by_person WHERE start_us >= {s:Int64} "
                      "GROUP BY person ORDER BY n DESC, person LIMIT {n:UInt32}", {"s": start, "n": cases})["person"]
    ids = [f"MEM-{i}" for i in range(len(people))]
    n = len(ids)
    st.insert("qrtrace.cases", {"case_id": ids, "person": people, "infectious_from_us": [start] * n,
                                "infectious_to_us": [end] * n, "declared_at_us": [end] * n,
                                "declared_by": ["memory-test"] * n})  # fmt: skip
    who = Principal("memory-epi", Role.EPIDEMIOLOGIST)
    began = time.perf_counter()
    job = svc.start_trace(who, ids, TraceRules(depth=2, grace_us=30 * US_PER_MINUTE, until_us=end), "memory test")
    while job.status == "running":
        time.sleep(0.2)
    out = {"status": job.status, "error": job.error, "cases": n, "contacts": job.contacts,
           "trace_seconds": round(time.perf_counter() - began, 1)}  # fmt: skip
    if job.status == "done":
        try:
            svc.trace_result(who, job.trace_id, "memory test")
            out["whole_result"] = "answered"
        except TooLarge as exc:
            out["whole_result"] = str(exc)
        one = svc.trace_result(who, job.trace_id, "memory test", case_id=ids[-1])
        out["one_case_contacts"] = len(one["cases"][0]["contacts"])
        out["rows"] = sum(h["exposure_rows"] for h in svc._load_run(job.trace_id)["headers"])
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    out["cap_mb"] = round(cap / 2**20)
    svc.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
