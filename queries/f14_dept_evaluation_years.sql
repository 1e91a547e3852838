-- F14: consecutive years of whole-department evaluation of all first-level departments.
SELECT count(DISTINCT year) AS years, min(year) AS first_year, max(year) AS last_year
FROM dept_scores;
