-- F8: budget units under performance-target management in 2023.
SELECT count(*) AS budget_units
FROM unit_budgets
WHERE year = 2023;
