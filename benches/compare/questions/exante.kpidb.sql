-- Ex-ante review totals of 2023.
SELECT projects_reviewed, requested_total, approved_total, cut_total, cut_rate, rejected, returned
FROM exante_summary(2023);
