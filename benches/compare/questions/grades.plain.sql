-- The 2023 finance key evaluations (unscored ones left out) by grade, MoF bands
-- with the lower bound inclusive, best grade first.
SELECT CASE WHEN total_score >= 90 THEN '优'
            WHEN total_score >= 80 THEN '良'
            WHEN total_score >= 60 THEN '中'
            ELSE '差' END AS grade,
       count(*) AS projects
FROM evaluations
WHERE year = 2023 AND eval_kind = 'finance_evaluation' AND total_score IS NOT NULL
GROUP BY 1
ORDER BY min(total_score) DESC;
