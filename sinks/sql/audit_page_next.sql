-- The next chained entry after a gap wider than a page (ORDER BY + LIMIT: min() of no rows would be 0).
SELECT seq FROM qrtrace.audit_log WHERE seq > {after_seq:UInt64} ORDER BY seq LIMIT 1
