-- One page of the audit chain for `qrtrace audit verify`, in chain order (a duplicate number sorts next to
-- its twin, so the check sees it).
SELECT seq, at_us, actor, action, case_id, subject, purpose, detail, prev_hash, entry_hash
FROM qrtrace.audit_log
WHERE seq > {from_seq:UInt64} AND seq <= {to_seq:UInt64}
ORDER BY seq, at_us, entry_hash
