-- The stored trace exposures' columns: runs stored before risk tiers lack `risk`.
SELECT name FROM system.columns WHERE database = 'qrtrace' AND table = 'trace_exposures'
