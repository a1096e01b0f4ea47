-- Scans, people and active venues per commune x category in the period (since, as_of].
SELECT commune_code, category, count() AS scans, uniqExact(person) AS people,
       uniqExact(venue_id) AS active_venues
FROM (
    SELECT venue_id, person
    FROM qrtrace.checkins FINAL
    WHERE event_time_us > {since_us:Int64} AND event_time_us <= {as_of_us:Int64}
)
ANY INNER JOIN (SELECT venue_id, commune_code, category FROM qrtrace.venues FINAL) USING venue_id
GROUP BY commune_code, category
