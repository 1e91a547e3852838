-- F11: key projects in the finance bureau's mid-year monitoring: count, funds (万元), suggestions.
SELECT count(*) AS projects,
       sum(p.budget_amount) AS budget_total,
       sum(e.suggestions) AS suggestions
FROM evaluations e
JOIN projects p ON p.year = e.year AND p.project_code = e.project_code
WHERE e.year = 2023 AND e.eval_kind = 'finance_monitoring';
