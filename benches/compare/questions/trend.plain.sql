-- Each department's total score over 2019–2023: the years it was scored, its first
-- and last totals, and the least-squares slope of total against year in points per
-- year; a slope of 0.5 or more is improving, -0.5 or less declining, stable between,
-- and none for a department scored in one year only.
--
-- The slope is fitted on exact integers (totals in hundredths, years from 2019):
-- slope = (n·Σxy − Σx·Σy) / (n·Σx² − (Σx)²) / 100, one rounding, and direction
-- compares the exact fraction with ±0.5. Totals move in half points, so slopes of
-- exactly ±0.5 are common; regr_slope in floating point lands on either side of
-- them, depending on the engine and the order it adds the rows in.
WITH totals AS (
  SELECT dept_code, year, sum(score) AS total
  FROM dept_scores
  WHERE year BETWEEN 2019 AND 2023
  GROUP BY dept_code, year),
sums AS (
  SELECT dept_code, count(*) AS n, min(year) AS first_year, max(year) AS last_year,
         sum(year - 2019) AS sx,
         sum((year - 2019) * (year - 2019)) AS sxx,
         sum(CAST(total * 100 AS BIGINT)) AS sy,
         sum((year - 2019) * CAST(total * 100 AS BIGINT)) AS sxy
  FROM totals
  GROUP BY dept_code),
fitted AS (
  SELECT dept_code, n, first_year, last_year,
         n * sxy - sx * sy AS num,
         n * sxx - sx * sx AS den
  FROM sums)
SELECT f.dept_code, d.dept_name, f.n AS years_present,
       t_first.total AS first_total, t_last.total AS last_total,
       CASE WHEN f.n >= 2 THEN CAST(f.num AS DOUBLE) / CAST(f.den * 100 AS DOUBLE) END AS slope,
       CASE WHEN f.n < 2 THEN NULL
            WHEN f.num >= f.den * 50 THEN 'improving'
            WHEN f.num <= -f.den * 50 THEN 'declining'
            ELSE 'stable' END AS direction
FROM fitted f
JOIN totals t_first ON t_first.dept_code = f.dept_code AND t_first.year = f.first_year
JOIN totals t_last ON t_last.dept_code = f.dept_code AND t_last.year = f.last_year
LEFT JOIN departments d ON d.dept_code = f.dept_code
ORDER BY 1;
