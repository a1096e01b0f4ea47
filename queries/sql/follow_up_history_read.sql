-- One record's history, oldest first.
SELECT at_us, actor, field, from_value, to_value
FROM qrtrace.follow_up_history
WHERE follow_up_id = {follow_up_id:String}
ORDER BY at_us, field
