-- Every person with a stored visit, in byte order (the trace index's person dictionary: a code is the
-- position), with the store's hash of the name: the day reads send hashes, not names. Visits of every
-- version count: a withdrawn visit's person only costs a dictionary entry.
SELECT person AS name, cityHash64(person) AS hash FROM qrtrace.visits_by_person GROUP BY person ORDER BY person
