-- The 2023 finance key evaluations by grade.
SELECT grade, projects
FROM grade_distribution(2023);
