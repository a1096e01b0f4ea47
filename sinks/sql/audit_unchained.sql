-- Entries without a place in the chain (written before it existed, or around the audit log).
SELECT count() AS n FROM qrtrace.audit_log WHERE seq = 0
