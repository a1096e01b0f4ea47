-- Each newly placed person's visits from their first exposure until `until` (index range on person).
-- Written for ClickHouse 18.16 as well as chDB:
-- * 18.16 has no `x IN <array literal>`: membership is `IN (SELECT arrayJoin(...))`;
-- * the CASTs give an empty `[]` a type (18.16 types it Array(Nothing), which indexOf and [] refuse);
-- * the per-person bound is applied outside the subquery: 18.16 evaluates every WHERE term on every
--   row it reads, and indexOf over a 2,000-name list on all of them took 40 s instead of 0.7 s.
SELECT person, venue_id, start_us, end_us
FROM (
    SELECT person, venue_id, start_us, end_us
    FROM qrtrace.visits_by_person FINAL
    WHERE person IN (SELECT arrayJoin(CAST({persons:Array(String)} AS Array(String))))
      AND start_us <= {until_us:Int64}
) AS candidates
WHERE start_us >= CAST({since:Array(Int64)} AS Array(Int64))[indexOf(CAST({persons:Array(String)} AS Array(String)), person)]
