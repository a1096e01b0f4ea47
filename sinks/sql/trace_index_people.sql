-- Every person with a stored visit, in byte order: the trace index's person dictionary (a code is the
-- position). Visits of every version count: a withdrawn visit's person only costs a dictionary entry.
SELECT person FROM qrtrace.visits_by_person GROUP BY person ORDER BY person
