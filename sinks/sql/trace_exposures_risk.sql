-- Give a trace_exposures table made before risk tiers its `risk` column (older rows read as casual, and
-- their run's header has no rule, so they are shown without tiers).
ALTER TABLE qrtrace.trace_exposures ADD COLUMN risk UInt8 DEFAULT 0
