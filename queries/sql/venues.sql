SELECT venue_id, name, category, commune_code, capacity
FROM qrtrace.venues FINAL
ORDER BY venue_id
