-- The latest stored event time of each of these venues: a venue the processor state does not know (new,
-- or its state was lost or of an earlier layout) re-pairs keys from the store before that time.
SELECT venue_id, max(event_time_us) AS latest FROM qrtrace.checkins
WHERE venue_id IN {venues:Set(String)}
GROUP BY venue_id
