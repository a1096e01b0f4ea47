-- Every venue with a stored visit, in byte order: the trace index's venue dictionary.
SELECT venue_id FROM qrtrace.visits_by_venue GROUP BY venue_id ORDER BY venue_id
