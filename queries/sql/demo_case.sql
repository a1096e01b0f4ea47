-- Demo helper: a plausible F0, drawn (by seed) among people seen at 2 to 4 venues in the window, the
-- first of them before `half_us` (the middle of the simulated days inside the window): a case first
-- seen late on the last day leaves its F1s no later visits, so the demo would show no F2.
SELECT person, uniqExact(venue_id) AS venues
FROM (SELECT person, venue_id, start_us, withdrawn FROM qrtrace.visits_by_person FINAL)
WHERE withdrawn = 0 AND start_us >= {from_us:Int64} AND start_us <= {to_us:Int64}
GROUP BY person
HAVING venues >= 2 AND venues <= 4 AND min(start_us) < {half_us:Int64}
ORDER BY cityHash64(person, {seed:Int64})
LIMIT 1
