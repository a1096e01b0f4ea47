-- What the public list says about the venues of its sites: name, category, commune.
SELECT venue_id, name, category, commune_code
FROM qrtrace.venues FINAL
WHERE venue_id IN {venue_ids:Set(String)}
