-- The latest row of the given exposure sites.
SELECT site_id, venue_id, from_us, to_us, advice_vi, advice_en, case_id, case_person, published_at_us,
       published_by, withdrawn, withdrawn_at_us, withdrawn_by, version
FROM qrtrace.exposure_sites FINAL
WHERE site_id IN {site_ids:Set(String)}
