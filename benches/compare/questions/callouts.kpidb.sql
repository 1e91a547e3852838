-- 点名通报: the bottom three departments on each level-2 indicator in 2023, ties included.
SELECT level1, level2, dept_code, dept_name, score, max_score, score_rate, rank_from_bottom
FROM indicator_callouts(2023, 3);
