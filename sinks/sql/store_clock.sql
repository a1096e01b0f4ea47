-- The store's clock in seconds: the visit feed's stamps come from it, not from this machine's.
SELECT toUInt32(now()) AS now_s
