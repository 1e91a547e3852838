-- 约谈名单: the departments ranked in the lowest three (all tied at the cut-off),
-- with their three lowest-rate indicators.
WITH ranking AS (SELECT * FROM dept_ranking(${year})),
     cutoff AS (SELECT min(rank) AS rank FROM (SELECT rank FROM ranking ORDER BY rank DESC LIMIT 3)),
     weakest AS (
       SELECT dept_code, lowest_k(i.level3, score_rate(score, max_score), 3) AS weakest_indicators
       FROM dept_scores s JOIN indicators i USING (indicator_code)
       WHERE s.year = ${year}
       GROUP BY dept_code)
SELECT r.rank, r.dept_code, r.dept_name, r.total_score,
       perf_grade(r.total_score, ${scheme}) AS grade, w.weakest_indicators
FROM ranking r JOIN weakest w USING (dept_code)
WHERE r.rank >= (SELECT rank FROM cutoff)
ORDER BY r.rank, r.dept_code;
