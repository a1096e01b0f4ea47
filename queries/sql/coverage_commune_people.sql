-- Distinct people scanned per commune in the period (since, as_of] (a person counts once per commune).
SELECT commune_code, uniqExact(person) AS people
FROM (
    SELECT venue_id, person
    FROM qrtrace.checkins FINAL
    WHERE event_time_us > {since_us:Int64} AND event_time_us <= {as_of_us:Int64}
) AS scans_in_period
ALL INNER JOIN (SELECT venue_id, commune_code FROM qrtrace.venues FINAL) AS registered USING venue_id
GROUP BY commune_code
