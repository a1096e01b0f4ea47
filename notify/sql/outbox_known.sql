-- Which of the given message ids the outbox already holds (written again: those are not re-queued).
SELECT DISTINCT message_id
FROM qrtrace.notification_outbox
WHERE message_id IN (SELECT arrayJoin(CAST({ids:Array(String)} AS Array(String))))
