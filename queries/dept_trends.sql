-- Five-year trend of every department's total score, steepest improvement first.
SELECT dept_code, dept_name, years_present, first_total, last_total, round(slope, 2) AS points_per_year, direction
FROM dept_trend(2019, 2023)
ORDER BY slope DESC NULLS LAST, dept_code;
