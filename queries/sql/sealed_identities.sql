-- Sealed identifiers and contacts of the given pseudonyms (opened only by roles allowed to re-identify).
-- `IN (SELECT arrayJoin(CAST(...)))`, not `IN <array>`: ClickHouse 18.16 has no IN over an array literal.
SELECT person, identifier_sealed, contact_sealed
FROM qrtrace.identity_vault FINAL
WHERE person IN (SELECT arrayJoin(CAST({persons:Array(String)} AS Array(String))))
