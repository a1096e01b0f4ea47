-- One stored trace run (the pseudonymous result document).
SELECT trace_id, started_at_us, finished_at_us, actor, case_ids, purpose, rules, result
FROM qrtrace.trace_runs FINAL
WHERE trace_id = {trace_id:String}
