-- Active parts of the day-partitioned tables. `has(...)`, not `table IN ...`: ClickHouse 18.16 has no IN
-- over an array literal, and on system.parts it silently returns no rows for `table IN (SELECT ...)`.
SELECT table, partition FROM system.parts
WHERE database = 'qrtrace' AND active AND has(CAST({tables:Array(String)} AS Array(String)), table)
