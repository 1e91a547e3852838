-- F7: projects returned without review (实施条件不成熟退回).
SELECT count(*) AS returned
FROM exante_reviews
WHERE year = 2023 AND conclusion = 'returned';
