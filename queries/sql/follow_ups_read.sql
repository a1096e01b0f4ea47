-- Follow-up records, current state: all of them (everyone = 1) or those of the given communes, optionally
-- of one status ('' for any), by commune, first exposure and id.
SELECT follow_up_id, case_id, person, hop, risk, venue_id, commune_code, exposed_from_us, exposed_to_us, trace_id,
       status, quarantine_from_us, quarantine_until_us, tested_on_us, new_case_id, notes, created_at_us,
       updated_at_us, updated_by, version
FROM qrtrace.follow_ups FINAL
WHERE ({everyone:UInt8} = 1 OR commune_code IN (SELECT arrayJoin(CAST({communes:Array(String)} AS Array(String)))))
  AND ({status:String} = '' OR status = {status:String})
ORDER BY commune_code, exposed_from_us, follow_up_id
