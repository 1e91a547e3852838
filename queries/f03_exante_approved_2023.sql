-- F3: amount approved by the review, 万元.
SELECT sum(approved_amount) AS approved_total
FROM exante_reviews
WHERE year = 2023 AND conclusion <> 'returned';
