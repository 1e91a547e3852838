-- 部门整体绩效评价总排名: rank with ties (1, 2, 2, 4), grade, and the change from the year before.
SELECT rank, dept_code, dept_name, total_score,
       perf_grade(total_score, ${scheme}) AS grade,
       prev_rank, rank_change, score_change
FROM dept_ranking(${year})
ORDER BY rank, dept_code;
