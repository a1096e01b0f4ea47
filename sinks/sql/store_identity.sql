-- When this store was created (its first layout stamp): a derived file made from another store is stale.
SELECT min(created_at_us) AS created_at_us FROM qrtrace.schema_meta
