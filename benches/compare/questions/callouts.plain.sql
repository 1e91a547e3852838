-- 点名通报: for each level-2 indicator, the departments whose 2023 score rate on it
-- (their level-3 scores under it over the points available) ranks in the bottom
-- three, every department tied at the cut-off included.
WITH by_level2 AS (
  SELECT i.level1, i.level2, s.dept_code,
         sum(s.score) AS score, sum(s.max_score) AS max_score
  FROM dept_scores s
  JOIN indicators i ON i.indicator_code = s.indicator_code
  WHERE s.year = 2023 AND i.framework = 'dept'
  GROUP BY i.level1, i.level2, s.dept_code),
rated AS (
  -- The rate of whole hundredths: one rounding (the division), so equal rates such
  -- as 4.35/5.80 and 8.70/11.60 are equal doubles and tie.
  SELECT *, CASE WHEN max_score = 0 THEN NULL
                 ELSE CAST(score * 100 AS DOUBLE) / CAST(max_score * 100 AS DOUBLE) END AS score_rate
  FROM by_level2),
ranked AS (
  SELECT *, RANK() OVER (PARTITION BY level1, level2 ORDER BY score_rate) AS rank_from_bottom
  FROM rated)
SELECT r.level1, r.level2, r.dept_code, d.dept_name, r.score, r.max_score,
       r.score_rate, r.rank_from_bottom
FROM ranked r
LEFT JOIN departments d ON d.dept_code = r.dept_code
WHERE r.rank_from_bottom <= 3
ORDER BY 1, 2, 8, 3;
