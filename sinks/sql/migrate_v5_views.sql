-- Layout v4 -> v5: the views that copy visits_by_venue step aside; schema.sql then creates them again with
-- zone in their SELECT lists (a view's query cannot be altered on 18.16).
DROP TABLE IF EXISTS qrtrace.visits_by_person_mv;
DROP TABLE IF EXISTS qrtrace.visit_feed_mv;
