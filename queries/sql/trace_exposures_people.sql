-- Every pseudonym a stored trace run names as a contact or as a source (the cases are in trace_runs).
SELECT DISTINCT person FROM (
    SELECT person FROM qrtrace.trace_exposures WHERE trace_id = {trace_id:String}
    UNION ALL
    SELECT source_person AS person FROM qrtrace.trace_exposures WHERE trace_id = {trace_id:String}
)
