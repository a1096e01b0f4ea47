-- The latest status of the given message ids.
SELECT message_id, argMax(status, version) AS status, argMax(reason, version) AS reason,
       argMax(attempts, version) AS attempts, argMax(gateway, version) AS gateway,
       argMax(updated_at_us, version) AS updated_at_us
FROM qrtrace.notification_status
WHERE message_id IN (SELECT arrayJoin(CAST({ids:Array(String)} AS Array(String))))
GROUP BY message_id
ORDER BY message_id
