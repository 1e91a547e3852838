-- Year-end targets missed or exceeded by more than 20%.
SELECT CASE deviation WHEN 'under' THEN '未达标' ELSE '超额（目标偏低）' END AS deviation,
       object_code, name, indicator, comparator, unit, target_value, actual_value, completion_rate
FROM target_deviations(${year}, 0.2);
