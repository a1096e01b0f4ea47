-- The name and commune of the given venues, and that commune's name (what a message says about a venue).
SELECT v.venue_id AS venue_id, v.name AS name, v.commune_code AS commune_code
FROM qrtrace.venues AS v FINAL
WHERE v.venue_id IN (SELECT arrayJoin(CAST({venue_ids:Array(String)} AS Array(String))))
