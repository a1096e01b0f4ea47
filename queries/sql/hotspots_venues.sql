-- Crowding per venue over the occupancy windows that start in [since, as_of) and hold someone (the latest
-- count of each window): windows, windows over capacity, the peak (most people present) and the earliest
-- window that reached it, arrivals. The peak's window: argMax over (present, -start) takes the earliest of
-- equal peaks, so the answer does not depend on the engine's order.
SELECT venue_id, name, category, commune_code, capacity, windows, over_capacity_windows, peak_present,
       peak_window_us, arrivals
FROM (
    SELECT venue_id, count() AS windows, sum(over_capacity) AS over_capacity_windows,
           max(present) AS peak_present, argMax(window_start_us, (present, -window_start_us)) AS peak_window_us,
           sum(arrivals) AS arrivals
    FROM qrtrace.occupancy FINAL
    WHERE window_start_us >= {since_us:Int64} AND window_start_us < {as_of_us:Int64} AND present > 0
    GROUP BY venue_id
) AS crowded
ALL INNER JOIN (SELECT venue_id, name, category, commune_code, capacity FROM qrtrace.venues FINAL) AS registered
USING venue_id
ORDER BY venue_id
