-- The finance bureau's key monitored projects as monitored in the month, with its suggestions.
SELECT w.object_code, w.name, w.budget_amount, w.executed_amount, w.execution_rate,
       w.execution_gap, w.unlikely_targets, w.level, e.suggestions
FROM evaluations e
JOIN monitoring_warnings(${year}, ${month}) w
  ON w.object_kind = 'project' AND w.object_code = e.project_code
WHERE e.year = ${year} AND e.eval_kind = 'finance_monitoring'
ORDER BY w.execution_gap, w.object_code;
