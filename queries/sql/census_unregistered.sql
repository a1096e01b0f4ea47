-- Census establishments not linked to a registered venue: the list for the door-to-door visits.
SELECT establishment_id, name, address, category, commune_code
FROM qrtrace.census FINAL
WHERE venue_id NOT IN (SELECT venue_id FROM qrtrace.venues)
ORDER BY commune_code, category, establishment_id
