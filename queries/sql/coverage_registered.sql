-- Registered venues per commune x category.
SELECT commune_code, category, count() AS registered
FROM qrtrace.venues FINAL
GROUP BY commune_code, category
