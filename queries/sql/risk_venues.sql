-- Every registered venue's category: the risk rule's close threshold is a setting per category.
SELECT venue_id, category FROM qrtrace.venues FINAL
