-- A hop's sources: the frontier people's visits in [min_start, max_start] (index range scan on
-- (person, start_us)); each person's own bounds are applied by the caller. `longest` (the longest visit
-- stored) tells the caller how far before a source's start an overlapping visit can have begun.
-- The rows of one visit are resolved with LIMIT 1 BY (the highest version wins; the caller drops the
-- visit when that row withdraws it):
-- cheaper than FINAL on point reads, and only the rows read are sorted.
-- Values are inline literals (no subquery): on chDB every subquery costs milliseconds of setup.
SELECT person, venue_id, start_us, end_us, withdrawn, zone,
       (SELECT maxMerge(longest) FROM qrtrace.visit_spans) AS longest
FROM qrtrace.visits_by_person
WHERE person IN {persons:Set(String)} AND start_us >= {min_start:Int64} AND start_us <= {max_start:Int64}
ORDER BY version DESC
LIMIT 1 BY person, start_us, venue_id, opened_by
