-- The occupancy windows in which a venue was over capacity (the latest count of each window): any time
-- together in one of them makes an exposure close. Few rows: most windows are not over capacity.
SELECT venue_id, window_start_us FROM qrtrace.occupancy FINAL
WHERE over_capacity = 1 AND window_start_us >= {since_us:Int64}
