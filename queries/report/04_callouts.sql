-- 点名通报: the three lowest departments by score rate on each level-2 indicator, ties included.
SELECT level1, level2, rank_from_bottom, dept_code, dept_name, score, max_score, score_rate
FROM indicator_callouts(${year}, 3);
