-- F13: grades of the finance key evaluations (local scheme; bands 90/80/60, lower bound inclusive).
SELECT grade, projects FROM grade_distribution(2023, 'local');
