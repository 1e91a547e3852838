-- Year-end targets of 2023 missed or exceeded by more than 20%: unmet targets, and
-- targets set too low (目标设定偏低), furthest first.
SELECT deviation, object_kind, object_code, name, indicator, comparator, unit,
       target_value, actual_value, round(completion_rate, 4) AS completion_rate
FROM target_deviations(2023, 0.2);
