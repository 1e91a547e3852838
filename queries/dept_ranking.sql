-- Whole-department ranking of 2023: total score, rank with ties (RANK: 1, 2, 2, 4),
-- and the change from 2022 (NULL for a department not evaluated in 2022).
WITH totals AS (
  SELECT year, dept_code, sum(score) AS total_score, count(*) AS indicators_scored
  FROM dept_scores
  WHERE year IN (2022, 2023)
  GROUP BY year, dept_code
),
ranked AS (
  SELECT *, CAST(RANK() OVER (PARTITION BY year ORDER BY total_score DESC) AS BIGINT) AS rank
  FROM totals
)
SELECT cur.rank,
       cur.dept_code,
       d.dept_name,
       cur.total_score,
       prev.rank AS prev_rank,
       prev.rank - cur.rank AS rank_change,
       cur.total_score - prev.total_score AS score_change
FROM ranked cur
JOIN departments d ON d.dept_code = cur.dept_code
LEFT JOIN ranked prev ON prev.dept_code = cur.dept_code AND prev.year = cur.year - 1
WHERE cur.year = 2023
ORDER BY cur.rank, cur.dept_code;
