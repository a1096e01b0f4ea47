-- The outbox rows of the given message ids (one per id: argMax over a row written twice).
SELECT message_id, argMax(trace_id, created_at_us) AS trace_id, argMax(case_id, created_at_us) AS case_id,
       argMax(case_person, created_at_us) AS case_person, argMax(person, created_at_us) AS person,
       argMax(tier, created_at_us) AS tier, argMax(hop, created_at_us) AS hop,
       argMax(venue_id, created_at_us) AS venue_id, argMax(first_exposure_us, created_at_us) AS first_exposure_us,
       argMax(lang, created_at_us) AS lang, argMax(text, created_at_us) AS text
FROM qrtrace.notification_outbox
WHERE message_id IN (SELECT arrayJoin(CAST({ids:Array(String)} AS Array(String))))
GROUP BY message_id
ORDER BY message_id
