-- Layout v4 -> v5: the columns of the tables zones touch (which exist, and which already have their zone
-- column: a migration cut short added some).
SELECT table, name FROM system.columns
WHERE database = 'qrtrace' AND table IN ('venues', 'checkins', 'visits_by_venue', 'visits_by_person', 'visit_feed')
