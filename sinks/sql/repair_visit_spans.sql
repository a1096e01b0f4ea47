-- Rebuild the longest-visit-per-day table from the visits themselves (after long visits were shortened).
INSERT INTO qrtrace.visit_spans
SELECT intDiv(start_us, 86400000000) AS day, maxState(end_us - start_us) AS longest
FROM (SELECT start_us, end_us, withdrawn FROM qrtrace.visits_by_venue FINAL)
WHERE withdrawn = 0
GROUP BY day
