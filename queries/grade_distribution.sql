-- Grade distribution of the 2023 finance key evaluations, with policies and projects apart.
SELECT perf_grade(e.total_score, 'local') AS grade,
       count(*) AS evaluations,
       count(*) FILTER (WHERE p.kind = 'policy') AS policies,
       count(*) FILTER (WHERE p.kind = 'project') AS projects
FROM evaluations e JOIN projects p ON p.year = e.year AND p.project_code = e.project_code
WHERE e.year = 2023 AND e.eval_kind = 'finance_evaluation' AND e.total_score IS NOT NULL
GROUP BY 1
ORDER BY min(e.total_score) DESC;
