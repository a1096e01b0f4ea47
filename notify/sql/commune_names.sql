-- Every commune's Vietnamese name (a health station is named after its commune).
SELECT commune_code, name_vi
FROM qrtrace.communes FINAL
