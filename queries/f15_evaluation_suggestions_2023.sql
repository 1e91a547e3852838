-- F15: suggestions collected from the 2023 finance key evaluations.
SELECT sum(suggestions) AS suggestions
FROM evaluations
WHERE year = 2023 AND eval_kind = 'finance_evaluation';
