-- Whole-department ranking of 2023: total score, grade, rank with ties (1, 2, 2, 4)
-- and the change from 2022 (NULL for a department not ranked in 2022).
SELECT rank, dept_code, dept_name, total_score, grade, prev_rank, rank_change, score_change, complete
FROM dept_ranking(2023)
ORDER BY rank, dept_code;
