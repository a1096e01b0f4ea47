-- The audit log's columns: stores made before the hash chain lack seq, prev_hash and entry_hash.
SELECT name FROM system.columns WHERE database = 'qrtrace' AND table = 'audit_log'
