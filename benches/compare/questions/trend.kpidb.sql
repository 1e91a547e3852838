-- Each department's total-score trend over 2019–2023.
SELECT dept_code, dept_name, years_present, first_total, last_total, slope, direction
FROM dept_trend(2019, 2023);
