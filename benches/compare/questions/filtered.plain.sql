-- A pass no rollup can answer: per year, the scores below 60% of their indicator's
-- maximum (a filter on the raw score), the same SQL for every engine.
SELECT year, count(*) AS low_scores, sum(score) AS score, sum(max_score) AS max_score
FROM dept_scores
WHERE score * 10 < max_score * 6
GROUP BY year
ORDER BY year;
