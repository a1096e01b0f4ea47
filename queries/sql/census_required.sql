-- Per commune x category: establishments that must deploy (required) and those linked to a registered
-- venue (required_registered). A link to a venue id that is not registered does not count.
SELECT commune_code, category, count() AS required,
       countIf(venue_id IN (SELECT venue_id FROM qrtrace.venues)) AS required_registered
FROM qrtrace.census FINAL
GROUP BY commune_code, category
