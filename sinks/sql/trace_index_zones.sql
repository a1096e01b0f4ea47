-- Every zone name of a stored visit ("" for visits at venues without zones), in byte order, with the store's
-- hash of it (see trace_index_people): the trace index's zone dictionary.
SELECT zone AS name, cityHash64(zone) AS hash FROM qrtrace.visits_by_venue GROUP BY zone ORDER BY zone
