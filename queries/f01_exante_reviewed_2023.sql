-- F1: key projects given an ex-ante review in 2023 (returned projects were not reviewed).
SELECT count(*) AS projects_reviewed
FROM exante_reviews
WHERE year = 2023 AND conclusion <> 'returned';
