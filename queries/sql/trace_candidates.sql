-- A hop's candidates: every visit in the given (venue, 6-hour bucket) cells, read through the primary key
-- (venue_id, start_bucket) with a tuple IN, so a venue is read only around its sources' times.
-- The provisional row of a visit that also has its final row is dropped (LIMIT 1 BY, highest version).
SELECT person, venue_id, start_us, end_us
FROM qrtrace.visits_by_venue
WHERE (venue_id, start_bucket) IN {cells:Set(Tuple(String, UInt32))}
ORDER BY version DESC
LIMIT 1 BY venue_id, person, start_us, opened_by
