-- Per local day (display offset) and commune: active venues, scans and people, for the trend chart.
SELECT intDiv(event_time_us + {offset_us:Int64}, 86400000000) AS day, commune_code,
       uniqExact(venue_id) AS active_venues, count() AS scans, uniqExact(person) AS people
FROM (
    SELECT venue_id, person, event_time_us
    FROM qrtrace.checkins FINAL
    WHERE event_time_us > {since_us:Int64} AND event_time_us <= {as_of_us:Int64}
) AS scans_in_period
ALL INNER JOIN (SELECT venue_id, commune_code FROM qrtrace.venues FINAL) AS registered USING venue_id
GROUP BY day, commune_code
ORDER BY day, commune_code
