-- Year-end self-evaluations (绩效自评), 2023: departments and projects by grade, with the
-- mean score (budget execution 10 points + performance targets 90).
SELECT object_kind, grade, count(*) AS objects, round(avg(total_score), 2) AS mean_score
FROM self_evaluation(2023)
GROUP BY object_kind, grade
ORDER BY object_kind, min(total_score) DESC;
