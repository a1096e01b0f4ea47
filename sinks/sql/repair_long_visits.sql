-- Visits longer than the shortest cap any category has: the caller applies each venue's own cap.
-- The latest version of each visit (as FINAL would keep), with the venue's category.
SELECT v.venue_id AS venue_id, v.person AS person, v.start_us AS start_us, v.end_us AS end_us,
       v.version AS version, v.opened_by AS opened_by, v.zone AS zone, r.category AS category
FROM (
    SELECT venue_id, person, start_us, end_us, version, opened_by, zone
    FROM (SELECT * FROM qrtrace.visits_by_venue FINAL)
    WHERE withdrawn = 0 AND end_us - start_us > {shortest_cap:Int64}
) AS v
ANY LEFT JOIN (SELECT venue_id, category FROM qrtrace.venues FINAL) AS r USING (venue_id)
