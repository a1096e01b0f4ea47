-- Demo helper: the person who visited the most distinct venues in the window (a plausible F0).
SELECT person, uniqExact(venue_id) AS venues, count() AS visits
FROM qrtrace.visits_by_person FINAL
WHERE start_us >= {from_us:Int64} AND start_us <= {to_us:Int64}
GROUP BY person
ORDER BY venues DESC, visits DESC, person
LIMIT 1
