-- The visit feed's day partitions (UTC days of the insert stamp), for trimming it.
SELECT DISTINCT toInt64(partition) AS day FROM system.parts
WHERE database = 'qrtrace' AND table = 'visit_feed' AND active
