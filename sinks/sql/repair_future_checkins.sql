-- Check-ins stored with an event time after the receiving clock's limit (written before event times
-- were bounded): moved to the dead letters by `qrtrace repair`.
SELECT scan_id, venue_id, person, direction, event_time_us, mode, scanner_id
FROM qrtrace.checkins FINAL
WHERE event_time_us > {latest:Int64}
