-- The hash chain's columns for an audit log made before it (sinks/audit.py runs each one only if its
-- column is missing: plain ADD COLUMN, which ClickHouse 18.16 runs; existing rows get 0 and '').
ALTER TABLE qrtrace.audit_log ADD COLUMN seq UInt64;
ALTER TABLE qrtrace.audit_log ADD COLUMN prev_hash String;
ALTER TABLE qrtrace.audit_log ADD COLUMN entry_hash String;
