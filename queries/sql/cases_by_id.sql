-- The declared cases a trace names.
SELECT case_id, person, infectious_from_us, infectious_to_us
FROM qrtrace.cases FINAL
WHERE case_id IN (SELECT arrayJoin(CAST({case_ids:Array(String)} AS Array(String))))
