-- Recent trace runs without their result documents.
SELECT trace_id, started_at_us, finished_at_us, actor, case_ids, purpose, rules
FROM qrtrace.trace_runs FINAL
ORDER BY started_at_us DESC
LIMIT {limit:UInt32}
