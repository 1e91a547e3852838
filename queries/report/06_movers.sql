-- Year-over-year movers: departments whose rank moved by five places or more.
SELECT rank, dept_name, prev_rank, rank_change, score_change
FROM dept_ranking(${year})
WHERE rank_change IS NOT NULL AND abs(rank_change) >= 5
ORDER BY rank_change DESC, dept_code;
