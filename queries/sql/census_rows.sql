-- Every establishment of the deployment census (the latest version of each), its link to a venue included.
SELECT commune_code, establishment_id, name, category, address, venue_id
FROM qrtrace.census FINAL
ORDER BY commune_code, establishment_id
