-- F6: reviewed projects concluded "not supported" (不予支持).
SELECT count(*) AS rejected
FROM exante_reviews
WHERE year = 2023 AND conclusion = 'reject';
