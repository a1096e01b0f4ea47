SELECT commune_code, name_vi, unit_type, district_code, district_name_vi, province_code, province_name_vi
FROM qrtrace.communes FINAL
ORDER BY commune_code
