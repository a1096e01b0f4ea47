-- Every venue with a stored visit, in byte order, with the store's hash of the id (see trace_index_people).
SELECT venue_id AS name, cityHash64(venue_id) AS hash FROM qrtrace.visits_by_venue GROUP BY venue_id ORDER BY venue_id
