-- Layout v3 -> v4, after the v4 tables exist: each visit's latest v3 row is copied at version 0, below
-- every row the v4 processor writes (its revisions start at 1); the copy into visits_by_venue feeds
-- visits_by_person and visit_spans through their views. Check-in outcomes start as the outcome on arrival.
INSERT INTO qrtrace.visits_by_venue (venue_id, person, start_us, end_us, closed_by, version, opened_by, withdrawn)
SELECT venue_id, person, start_us, end_us, closed_by, toUInt64(0), opened_by, toUInt8(0)
FROM qrtrace.visits_by_venue_v3 FINAL;
INSERT INTO qrtrace.checkin_outcomes (scan_id, venue_id, person, event_time_us, outcome, version)
SELECT scan_id, venue_id, person, event_time_us, outcome, toUInt64(0) FROM qrtrace.checkins FINAL;
DROP TABLE qrtrace.visits_by_venue_v3;
DROP TABLE qrtrace.visits_by_person_v3;
