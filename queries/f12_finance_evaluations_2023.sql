-- F12: finance key evaluations in 2023, split into policies and projects.
SELECT count(*) AS evaluations,
       count(*) FILTER (WHERE p.kind = 'policy') AS policies,
       count(*) FILTER (WHERE p.kind = 'project') AS projects
FROM evaluations e
JOIN projects p ON p.year = e.year AND p.project_code = e.project_code
WHERE e.year = 2023 AND e.eval_kind = 'finance_evaluation';
