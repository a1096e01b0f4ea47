-- The highest version each (venue, person) key has written, in visits and in check-in outcomes: a key
-- re-paired from the store writes its rows above it.
SELECT venue_id, person, max(version) AS revision
FROM qrtrace.visits_by_person
WHERE person IN {persons:Set(String)} AND (venue_id, person) IN {keys:Set(Tuple(String, String))}
GROUP BY venue_id, person
UNION ALL
SELECT venue_id, person, max(version) AS revision
FROM qrtrace.checkin_outcomes
WHERE venue_id IN {venues:Set(String)} AND (venue_id, person) IN {keys:Set(Tuple(String, String))}
GROUP BY venue_id, person
