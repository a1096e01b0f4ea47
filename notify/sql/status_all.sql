-- Every message's latest status, with its reason, attempts, gateway kind and time.
SELECT message_id, argMax(status, version) AS status, argMax(reason, version) AS reason,
       argMax(attempts, version) AS attempts, argMax(gateway, version) AS gateway,
       argMax(updated_at_us, version) AS updated_at_us
FROM qrtrace.notification_status
GROUP BY message_id
ORDER BY message_id
