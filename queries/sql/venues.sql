SELECT venue_id, name, category, commune_code, capacity, zones
FROM qrtrace.venues FINAL
ORDER BY venue_id
