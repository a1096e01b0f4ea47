-- Scans, people and active venues per commune x category in the period (since, as_of].
-- ALL, not ANY: newer ClickHouse makes ANY INNER JOIN match each left key once (venues are unique anyway).
SELECT commune_code, category, count() AS scans, uniqExact(person) AS people,
       uniqExact(venue_id) AS active_venues
FROM (
    SELECT venue_id, person
    FROM qrtrace.checkins FINAL
    WHERE event_time_us > {since_us:Int64} AND event_time_us <= {as_of_us:Int64}
) AS scans_in_period
ALL INNER JOIN (SELECT venue_id, commune_code, category FROM qrtrace.venues FINAL) AS registered USING venue_id
GROUP BY commune_code, category
