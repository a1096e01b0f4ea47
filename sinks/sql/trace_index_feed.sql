-- Visit rows stored since a stamp (seconds): what the trace index has not seen yet, and a margin before
-- it (an insert is stamped when it starts, and seen when it ends). `opened` stands for opened_by.
SELECT toUInt32(stored_at) AS stored_s, venue_id, person, start_us, end_us, version,
       cityHash64(opened_by) AS opened, withdrawn, zone
FROM qrtrace.visit_feed
WHERE stored_at >= toDateTime({since_s:UInt32})
