-- Layout v4 -> v5: which of the zone columns the store already has (a migration cut short added some).
SELECT table, name FROM system.columns
WHERE database = 'qrtrace' AND name IN ('zone', 'zones')
  AND table IN ('venues', 'checkins', 'visits_by_venue', 'visits_by_person', 'visit_feed')
