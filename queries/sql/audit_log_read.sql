-- The audit log, newest first, optionally narrowed to one action or case ('' = any).
SELECT at_us, actor, action, case_id, subject, purpose, detail
FROM qrtrace.audit_log
WHERE at_us > {since_us:Int64}
  AND ({action:String} = '' OR action = {action:String})
  AND ({case_id:String} = '' OR case_id = {case_id:String})
ORDER BY at_us DESC
LIMIT {limit:UInt32}
