-- Layout v3 -> v4, before the v4 tables are created: the visit tables had a UInt8 version (0 provisional,
-- 1 final) and no way to withdraw a visit; ReplacingMergeTree's version column cannot be altered, so the
-- v3 tables step aside (their materialized views first) and are copied into the new ones afterwards.
DROP TABLE IF EXISTS qrtrace.visits_by_person_mv;
DROP TABLE IF EXISTS qrtrace.visit_spans_mv;
RENAME TABLE qrtrace.visits_by_venue TO qrtrace.visits_by_venue_v3, qrtrace.visits_by_person TO qrtrace.visits_by_person_v3;
