-- The name and commune of every registered venue (where a follow-up's contact was exposed).
SELECT venue_id, name, commune_code FROM qrtrace.venues FINAL
