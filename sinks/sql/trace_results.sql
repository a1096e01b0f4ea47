-- A trace run's results, one row per exposure (case, contact, source visit), written chunk by chunk of
-- cases while a batch trace runs and read back one case (or a few) at a time, so neither the trace nor a
-- result or call-list read holds a whole batch in memory. Pseudonymous, like trace_runs (which keeps the
-- run's per-case summaries); `risk` is the exposure's tier (0 casual, 1 close; runs made before tiers:
-- 0, and their header has no rule). Day-partitioned by the run's start, so retention drops both together.
CREATE TABLE IF NOT EXISTS qrtrace.trace_exposures (
    trace_id String, started_at_us Int64, case_index UInt32, person String, hop UInt8, first_exposure_us Int64,
    venue_id String, start_us Int64, end_us Int64, overlap_us Int64, source_person String, source_hop UInt8,
    risk UInt8 DEFAULT 0
) ENGINE = MergeTree PARTITION BY intDiv(started_at_us, 86400000000)
ORDER BY (trace_id, case_index, hop, first_exposure_us, person);
