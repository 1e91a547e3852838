-- 点名通报: the three lowest departments on each level-2 indicator in 2023, ties included.
SELECT level1, level2, rank_from_bottom, dept_name, score, max_score, round(score_rate * 100, 1) AS rate_pct
FROM indicator_callouts(2023, 3);
