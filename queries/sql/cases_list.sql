-- Declared positive cases, newest first (pseudonyms only; the API re-identifies for allowed roles).
SELECT case_id, person, infectious_from_us, infectious_to_us, declared_at_us, declared_by
FROM qrtrace.cases FINAL
ORDER BY declared_at_us DESC, case_id
LIMIT {limit:UInt32}
