-- Mutations (ALTER ... DELETE) of qrtrace's tables not finished yet; they run in the background.
SELECT count() AS n FROM system.mutations WHERE database = 'qrtrace' AND is_done = 0
