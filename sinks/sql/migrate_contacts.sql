-- Once per store: contacts that earlier versions kept in identity_vault, into contact_details. Run when
-- contact_details is empty. No FINAL: every version still on disk is copied, so a phone number that a
-- later check-in's empty row replaced but that no merge has dropped yet is recovered too.
INSERT INTO qrtrace.contact_details (person, contact_sealed, seen_at_us, source)
SELECT person, contact_sealed, sealed_at_us, 'identity_vault'
FROM qrtrace.identity_vault
WHERE contact_sealed != ''
