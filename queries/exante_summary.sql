-- Ex-ante review summary, every reviewed year.
SELECT 2023 AS year, * FROM exante_summary(2023)
UNION ALL
SELECT 2024 AS year, * FROM exante_summary(2024)
ORDER BY year;
