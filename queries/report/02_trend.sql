-- Score trends over five years of the top five and bottom five departments of the year.
WITH ranking AS (SELECT rank, dept_code, dept_name FROM dept_ranking(${year})),
     picked AS (
       SELECT * FROM ranking
       WHERE rank <= 5 OR rank > (SELECT count(*) FROM ranking) - 5)
SELECT p.rank AS rank_now, p.dept_name, s.year, sum(s.score) AS total_score
FROM picked p JOIN dept_scores s ON s.dept_code = p.dept_code
WHERE s.year BETWEEN ${year} - 4 AND ${year}
GROUP BY p.rank, p.dept_code, p.dept_name, s.year
ORDER BY p.rank, p.dept_code, s.year;
