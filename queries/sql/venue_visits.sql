-- Visits at the frontier's venues that touch each venue's window (lo, hi): start < hi AND end > lo.
-- Written for ClickHouse 18.16 as well as chDB:
-- * 18.16 has no `x IN <array literal>`: membership is `IN (SELECT arrayJoin(...))`;
-- * the CASTs give an empty `[]` a type (18.16 types it Array(Nothing), which indexOf and [] refuse);
-- * the per-venue window is applied outside the subquery: 18.16 evaluates every WHERE term on every
--   row it reads, and indexOf over a 2,000-venue list on all of them took 20 s instead of 1 s.
SELECT person, venue_id, start_us, end_us
FROM (
    SELECT person, venue_id, start_us, end_us
    FROM qrtrace.visits_by_venue FINAL
    WHERE venue_id IN (SELECT arrayJoin(CAST({venues:Array(String)} AS Array(String))))
      AND start_us < {max_hi:Int64}
) AS candidates
WHERE start_us < CAST({his:Array(Int64)} AS Array(Int64))[indexOf(CAST({venues:Array(String)} AS Array(String)), venue_id)]
  AND end_us > CAST({los:Array(Int64)} AS Array(Int64))[indexOf(CAST({venues:Array(String)} AS Array(String)), venue_id)]
