-- The floor: one pass over dept_scores, the same SQL for every engine.
SELECT year, count(*) AS score_rows, sum(score) AS score, sum(max_score) AS max_score
FROM dept_scores
GROUP BY year
ORDER BY year;
