-- The registered names of the given venues (a trace's evidence, shown to people by name).
SELECT venue_id, name
FROM qrtrace.venues FINAL
WHERE venue_id IN (SELECT arrayJoin(CAST({venue_ids:Array(String)} AS Array(String))))
