-- Rows and bytes on disk per table (active parts): the store-size panel.
SELECT table, sum(rows) AS rows, sum(bytes_on_disk) AS bytes
FROM system.parts
WHERE database = 'qrtrace' AND active
GROUP BY table
ORDER BY bytes DESC, table
