-- Sealed identifiers and contacts of the given pseudonyms (opened only by roles allowed to re-identify).
SELECT person, identifier_sealed, contact_sealed
FROM qrtrace.identity_vault FINAL
WHERE person IN {persons:Array(String)}
