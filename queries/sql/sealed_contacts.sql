-- Every contact entry of the given pseudonyms, sealed (opened only by roles allowed to re-identify).
-- All entries, not argMax: a person has one or two, and the history is read from the same rows. No FINAL:
-- a retried insert's duplicate is collapsed by identity.contact_timeline like any repeated number.
SELECT person, contact_sealed, seen_at_us, source
FROM qrtrace.contact_details
WHERE person IN (SELECT arrayJoin(CAST({persons:Array(String)} AS Array(String))))
