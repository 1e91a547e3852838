-- Score rate of every department on every level-2 indicator, departments in rank order.
WITH ranking AS (SELECT rank, dept_code FROM dept_ranking(${year}))
SELECT r.rank, d.dept_name, i.level1, i.level2,
       sum(s.score) AS score, sum(s.max_score) AS max_score,
       score_rate(sum(s.score), sum(s.max_score)) AS score_rate
FROM dept_scores s
JOIN indicators i USING (indicator_code)
JOIN departments d USING (dept_code)
JOIN ranking r USING (dept_code)
WHERE s.year = ${year}
GROUP BY r.rank, s.dept_code, d.dept_name, i.level1, i.level2
ORDER BY r.rank, s.dept_code, i.level1, i.level2;
