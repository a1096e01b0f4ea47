-- Per commune x venue category x local hour of day (display offset) over the occupancy windows that start
-- in [since, as_of): arrivals, the sum of people present over the windows (person-windows) and the most
-- people present in one window at one venue. Few rows: communes x categories x 24 at most.
SELECT commune_code, category,
       toUInt8(intDiv((window_start_us + {offset_us:Int64}) % 86400000000, 3600000000)) AS hour,
       sum(arrivals) AS arrivals, sum(present) AS present_windows, max(present) AS peak_present
FROM (
    SELECT venue_id, window_start_us, arrivals, present
    FROM qrtrace.occupancy FINAL
    WHERE window_start_us >= {since_us:Int64} AND window_start_us < {as_of_us:Int64}
) AS windows_in_period
ALL INNER JOIN (SELECT venue_id, commune_code, category FROM qrtrace.venues FINAL) AS registered USING venue_id
GROUP BY commune_code, category, hour
ORDER BY commune_code, category, hour
