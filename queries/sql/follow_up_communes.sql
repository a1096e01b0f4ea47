-- Commune names (the spreadsheets show them).
SELECT commune_code, name_vi FROM qrtrace.communes FINAL
