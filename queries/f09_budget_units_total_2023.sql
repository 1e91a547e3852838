-- F9: their budget total, 万元 (71.29 亿元).
SELECT sum(budget_amount) AS budget_total
FROM unit_budgets
WHERE year = 2023;
