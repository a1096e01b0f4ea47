-- The last entry of the audit log's hash chain (sinks/audit.py); none on a new store.
SELECT seq, entry_hash FROM qrtrace.audit_log WHERE seq > 0 ORDER BY seq DESC LIMIT 1
