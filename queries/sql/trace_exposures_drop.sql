-- Drop the stored exposures of a trace run that failed before its trace_runs row was written.
ALTER TABLE qrtrace.trace_exposures DELETE WHERE trace_id = {trace_id:String}
