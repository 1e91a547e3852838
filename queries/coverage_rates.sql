-- Coverage rates by year: targets declared and reviewed (budget units), targets disclosed
-- (projects), department monitoring of projects over 200万元, self-evaluation of projects.
WITH units AS (
  SELECT year, coverage_rate(has_targets) AS targets_declared, coverage_rate(targets_reviewed) AS targets_reviewed
  FROM unit_budgets GROUP BY year),
proj AS (
  SELECT p.year,
         coverage_rate(p.targets_disclosed) AS targets_disclosed,
         coverage_rate(m.project_code IS NOT NULL) FILTER (WHERE p.budget_amount > 200) AS monitored_over_200,
         coverage_rate(s.project_code IS NOT NULL) FILTER (WHERE p.budget_amount > 0) AS self_evaluated
  FROM projects p
  LEFT JOIN evaluations m ON m.year = p.year AND m.project_code = p.project_code AND m.eval_kind = 'monitoring'
  LEFT JOIN evaluations s ON s.year = p.year AND s.project_code = p.project_code AND s.eval_kind = 'self'
  GROUP BY p.year)
SELECT year, round(100 * targets_declared, 2) AS declared_pct, round(100 * targets_reviewed, 2) AS reviewed_pct,
       round(100 * targets_disclosed, 2) AS disclosed_pct, round(100 * monitored_over_200, 2) AS monitored_pct,
       round(100 * self_evaluated, 2) AS self_evaluated_pct
FROM units JOIN proj USING (year)
ORDER BY year;
