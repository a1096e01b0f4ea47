-- The latest row of every visit with one of the given (venue, person, start): the visits a feed row may
-- have replaced in an index segment (segments keep no opened_by), read again from the system of record.
SELECT venue_id, person, start_us, end_us, version, cityHash64(opened_by) AS opened, withdrawn, zone
FROM qrtrace.visits_by_venue
WHERE start_us >= {min_start:Int64} AND start_us <= {max_start:Int64}
  AND (venue_id, person, start_us) IN {keys:Set(Tuple(String, String, Int64))}
ORDER BY version DESC
LIMIT 1 BY venue_id, person, start_us, opened_by
