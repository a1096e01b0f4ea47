-- Layout v4 -> v5: the zone columns, one statement per column in the order of sinks/store.py's
-- ZONE_COLUMNS; each runs only when system.columns lacks it (18.16 has no ADD COLUMN IF NOT EXISTS).
-- Existing rows read the default: no zones, no zone.
ALTER TABLE qrtrace.venues ADD COLUMN zones String DEFAULT '';
ALTER TABLE qrtrace.checkins ADD COLUMN zone String DEFAULT '';
ALTER TABLE qrtrace.visits_by_venue ADD COLUMN zone String DEFAULT '';
ALTER TABLE qrtrace.visits_by_person ADD COLUMN zone String DEFAULT '';
ALTER TABLE qrtrace.visit_feed ADD COLUMN zone String DEFAULT '';
