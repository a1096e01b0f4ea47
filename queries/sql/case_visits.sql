-- The case's visits intersecting its infectious window [from, to] (index range on person).
SELECT person, venue_id, start_us, end_us
FROM qrtrace.visits_by_person FINAL
WHERE person = {person:String} AND start_us <= {to_us:Int64} AND end_us >= {from_us:Int64}
