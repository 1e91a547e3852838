-- The red list: execution 20 points or more behind time progress, or a target unlikely to be met.
SELECT CASE object_kind WHEN 'dept' THEN '部门' ELSE '项目' END AS object_kind, object_code, name, budget_amount, executed_amount, execution_rate,
       execution_gap, targets, unlikely_targets
FROM monitoring_warnings(${year}, ${month})
WHERE level = 'red';
