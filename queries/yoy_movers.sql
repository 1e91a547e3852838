-- Year-over-year movers of 2023: the largest rank changes up and down.
SELECT rank, dept_name, prev_rank, rank_change, score_change
FROM dept_ranking(2023)
WHERE rank_change IS NOT NULL AND abs(rank_change) >= 5
ORDER BY rank_change DESC, dept_code;
