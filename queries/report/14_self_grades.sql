-- Year-end self-evaluations by grade: departments and projects, with the mean score.
SELECT CASE object_kind WHEN 'dept' THEN '部门' ELSE '项目' END || '·' || grade AS category,
       grade, count(*) AS objects, round(avg(total_score), 2) AS mean_score
FROM self_evaluation(${year})
GROUP BY object_kind, grade
ORDER BY object_kind, min(total_score) DESC;
