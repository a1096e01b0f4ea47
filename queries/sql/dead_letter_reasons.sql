-- Dead letters by reason in the period: the operations page's loss view.
SELECT reason, count() AS dead_letters, max(received_at_us) AS last_at_us
FROM qrtrace.dead_letters FINAL
WHERE received_at_us > {since_us:Int64}
GROUP BY reason
ORDER BY dead_letters DESC, reason
