-- F11 in detail: the 9 projects of the finance bureau's mid-year monitoring (25.33 亿元,
-- 34 suggestions) as monitored in June: execution against time progress, targets judged
-- unlikely, the warning level, and the suggestions made.
SELECT w.object_code AS project_code, w.name, w.budget_amount, w.executed_amount,
       round(w.execution_rate * 100, 2) AS execution_pct,
       round(w.execution_gap * 100, 2) AS gap_points,
       w.targets, w.unlikely_targets, w.level, e.suggestions
FROM evaluations e
JOIN monitoring_warnings(2023, 6) w
  ON w.object_kind = 'project' AND w.object_code = e.project_code
WHERE e.year = 2023 AND e.eval_kind = 'finance_monitoring'
ORDER BY w.execution_gap, w.object_code;
