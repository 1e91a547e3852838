-- F2: amount requested by the reviewed projects, 万元.
SELECT sum(requested_amount) AS requested_total
FROM exante_reviews
WHERE year = 2023 AND conclusion <> 'returned';
