-- F13: grades of the finance key evaluations (local scheme; bands 90/80/60, lower bound inclusive).
SELECT CASE
         WHEN total_score >= 90 THEN '优秀'
         WHEN total_score >= 80 THEN '良好'
         WHEN total_score >= 60 THEN '一般'
         ELSE '较差'
       END AS grade,
       count(*) AS projects
FROM evaluations
WHERE year = 2023 AND eval_kind = 'finance_evaluation' AND total_score IS NOT NULL
GROUP BY 1
ORDER BY min(total_score) DESC;
