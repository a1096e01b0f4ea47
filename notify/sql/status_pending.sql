-- Message ids whose latest status is one of the given statuses (queued; failed too when retrying).
SELECT message_id, argMax(first_exposure_us, version) AS first_exposure_us
FROM qrtrace.notification_status
GROUP BY message_id
HAVING has(CAST({statuses:Array(String)} AS Array(String)), argMax(status, version))
ORDER BY message_id
