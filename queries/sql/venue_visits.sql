-- Visits at the frontier's venues that touch each venue's window (lo, hi): start < hi AND end > lo.
SELECT person, venue_id, start_us, end_us
FROM qrtrace.visits_by_venue FINAL
WHERE venue_id IN {venues:Array(String)}
  AND start_us < {max_hi:Int64}
  AND start_us < {his:Array(Int64)}[indexOf({venues:Array(String)}, venue_id)]
  AND end_us > {los:Array(Int64)}[indexOf({venues:Array(String)}, venue_id)]
