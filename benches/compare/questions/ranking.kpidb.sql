-- Whole-department ranking of 2023, with the movement from 2022.
SELECT rank, dept_code, dept_name, total_score, grade, prev_rank, rank_change, score_change
FROM dept_ranking(2023);
