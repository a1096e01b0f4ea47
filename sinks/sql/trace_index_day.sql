-- One UTC day's visit rows for the trace index, every version. Names travel as the store's hashes of them
-- (the builder maps those to dictionary codes: no strings cross into Python); `visit` identifies a visit
-- (its key columns hashed), so the builder keeps each visit's highest version and drops it when that row
-- withdraws it, as the trace readers do with LIMIT 1 BY.
SELECT cityHash64(person) AS person_hash, cityHash64(venue_id) AS venue_hash, start_us, end_us, version,
       withdrawn, cityHash64(venue_id, person, start_us, opened_by) AS visit, cityHash64(zone) AS zone_hash
FROM qrtrace.visits_by_venue
WHERE start_us >= {day_start:Int64} AND start_us < {day_end:Int64}
