-- One case's visits that can intersect its infectious window: started no later than `to_us` and no
-- earlier than `min_start` (the window's start minus the longest visit allowed; the caller caps longer
-- rows). The rows of one visit are resolved with LIMIT 1 BY (the highest version wins); the caller drops
-- the visit when that row withdraws it (as trace_sources.sql).
SELECT venue_id, start_us, end_us, withdrawn
FROM qrtrace.visits_by_person
WHERE person = {person:String} AND start_us >= {min_start:Int64} AND start_us <= {to_us:Int64}
ORDER BY version DESC
LIMIT 1 BY person, start_us, venue_id, opened_by
