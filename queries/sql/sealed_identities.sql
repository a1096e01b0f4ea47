-- Sealed identifiers of the given pseudonyms (opened only by roles allowed to re-identify); their contacts
-- are in contact_details (sealed_contacts.sql).
-- `IN (SELECT arrayJoin(CAST(...)))`, not `IN <array>`: ClickHouse 18.16 has no IN over an array literal.
SELECT person, identifier_sealed
FROM qrtrace.identity_vault FINAL
WHERE person IN (SELECT arrayJoin(CAST({persons:Array(String)} AS Array(String))))
