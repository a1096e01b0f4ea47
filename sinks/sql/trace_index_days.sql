-- The UTC days with stored visits (visits_by_venue's day partitions) and the rows each holds, every
-- version counted: from the parts list, without reading the table.
SELECT toInt64(partition) AS day, sum(rows) AS rows FROM system.parts
WHERE database = 'qrtrace' AND table = 'visits_by_venue' AND active
GROUP BY partition ORDER BY day
