-- The first entry without a place in the chain written after the chain began: it did not come through
-- the audit log's writer.
SELECT at_us, actor, action FROM qrtrace.audit_log
WHERE seq = 0 AND at_us >= {after_us:Int64}
ORDER BY at_us LIMIT 1
