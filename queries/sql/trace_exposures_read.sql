-- The stored exposures of cases [first_case, end_case) of one trace run, in the order of the result
-- documents: per case by hop, first exposure and person, each contact's exposures by start, venue, source.
SELECT case_index, person, hop, first_exposure_us, venue_id, start_us, end_us, overlap_us, source_person,
       source_hop, risk
FROM qrtrace.trace_exposures
WHERE trace_id = {trace_id:String} AND case_index >= {first_case:UInt32} AND case_index < {end_case:UInt32}
ORDER BY case_index, hop, first_exposure_us, person, start_us, venue_id, source_person, end_us
