-- The current state of the given follow-up records.
SELECT follow_up_id, case_id, person, hop, risk, venue_id, commune_code, exposed_from_us, exposed_to_us, trace_id,
       status, quarantine_from_us, quarantine_until_us, tested_on_us, new_case_id, notes, created_at_us,
       updated_at_us, updated_by, version
FROM qrtrace.follow_ups FINAL
WHERE follow_up_id IN (SELECT arrayJoin(CAST({ids:Array(String)} AS Array(String))))
