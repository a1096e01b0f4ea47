-- Check-ins stored per minute of ingest time, by outcome: throughput as the store saw it.
SELECT intDiv(ingested_at_us, 60000000) AS minute, outcome, count() AS events
FROM qrtrace.checkins
WHERE ingested_at_us > {since_us:Int64}
GROUP BY minute, outcome
ORDER BY minute, outcome
