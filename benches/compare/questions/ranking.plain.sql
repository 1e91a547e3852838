-- Whole-department ranking of 2023 by total score (ties share a rank: 1, 2, 2, 4),
-- with the grade of the total (MoF bands) and the movement from 2022; prev_rank,
-- rank_change and score_change are NULL for a department not ranked in 2022.
WITH totals AS (
  SELECT year, dept_code, sum(score) AS total_score
  FROM dept_scores
  WHERE year IN (2022, 2023)
  GROUP BY year, dept_code),
ranked AS (
  SELECT year, dept_code, total_score,
         -- BIGINT: DataFusion's RANK() is unsigned, and rank_change may be negative.
         CAST(RANK() OVER (PARTITION BY year ORDER BY total_score DESC) AS BIGINT) AS rnk
  FROM totals)
SELECT cur.rnk AS rank, cur.dept_code, d.dept_name, cur.total_score,
       CASE WHEN cur.total_score >= 90 THEN '优'
            WHEN cur.total_score >= 80 THEN '良'
            WHEN cur.total_score >= 60 THEN '中'
            ELSE '差' END AS grade,
       prev.rnk AS prev_rank,
       prev.rnk - cur.rnk AS rank_change,
       cur.total_score - prev.total_score AS score_change
FROM ranked cur
LEFT JOIN departments d ON d.dept_code = cur.dept_code
LEFT JOIN ranked prev ON prev.year = 2022 AND prev.dept_code = cur.dept_code
WHERE cur.year = 2023
ORDER BY 1, 2;
