-- The latest row of every exposure site of one case (by its pseudonym).
SELECT site_id, venue_id, from_us, to_us, advice_vi, advice_en, case_id, case_person, published_at_us,
       published_by, withdrawn, withdrawn_at_us, withdrawn_by, version
FROM qrtrace.exposure_sites FINAL
WHERE case_person = {person:String}
ORDER BY from_us, venue_id, site_id
