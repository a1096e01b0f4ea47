-- Which store, in which state, a derived file was made from: the latest layout stamp. A new store, a
-- migrated one and a repaired one (`qrtrace repair` stamps again: it rewrites visits by mutation, which
-- the visit feed never sees) each get a new one, and a trace index of an earlier stamp is rebuilt.
SELECT max(created_at_us) AS created_at_us FROM qrtrace.schema_meta
