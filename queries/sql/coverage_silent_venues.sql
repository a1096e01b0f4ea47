-- Registered venues without a single scan in the period (since, as_of].
SELECT venue_id, name, category, commune_code
FROM qrtrace.venues FINAL
WHERE venue_id NOT IN (
    SELECT venue_id FROM qrtrace.checkins
    WHERE event_time_us > {since_us:Int64} AND event_time_us <= {as_of_us:Int64}
)
ORDER BY commune_code, category, venue_id
