-- Each newly placed person's visits from their first exposure until `until` (index range on person).
SELECT person, venue_id, start_us, end_us
FROM qrtrace.visits_by_person FINAL
WHERE person IN {persons:Array(String)}
  AND start_us <= {until_us:Int64}
  AND start_us >= {since:Array(Int64)}[indexOf({persons:Array(String)}, person)]
