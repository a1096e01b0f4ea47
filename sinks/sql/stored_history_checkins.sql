-- The stored check-ins of (venue, person) keys from `since` on: the processor re-pairs a key from them
-- when a check-in arrives older than what it remembers (with each check-in's zone: a visit keeps its opener's). Retries collapse onto their scan in the caller.
SELECT venue_id, person, scan_id, event_time_us, direction, zone
FROM qrtrace.checkins
WHERE venue_id IN {venues:Set(String)} AND event_time_us >= {since:Int64}
  AND (venue_id, person) IN {keys:Set(Tuple(String, String))}
