-- F4: amount cut by the review (requested − approved), 万元.
SELECT sum(requested_amount) - sum(approved_amount) AS cut_total
FROM exante_reviews
WHERE year = 2023 AND conclusion <> 'returned';
