-- Grades of the year's finance key evaluations (财政重点评价), policies and projects apart.
SELECT perf_grade(e.total_score, ${scheme}) AS grade,
       count(*) AS evaluations,
       count(*) FILTER (WHERE p.kind = 'policy') AS policies,
       count(*) FILTER (WHERE p.kind = 'project') AS projects
FROM evaluations e JOIN projects p ON p.year = e.year AND p.project_code = e.project_code
WHERE e.year = ${year} AND e.eval_kind = 'finance_evaluation' AND e.total_score IS NOT NULL
GROUP BY 1
ORDER BY min(e.total_score) DESC;
