-- The yellow list: execution 10 to 20 points behind time progress.
SELECT CASE object_kind WHEN 'dept' THEN '部门' ELSE '项目' END AS object_kind, object_code, name, budget_amount, executed_amount, execution_rate,
       execution_gap, targets
FROM monitoring_warnings(${year}, ${month})
WHERE level = 'yellow';
