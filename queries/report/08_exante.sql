-- Ex-ante review (事前绩效评估) of the year: amounts requested, approved and cut.
SELECT projects_reviewed, requested_total, approved_total, cut_total,
       CAST(cut_rate AS DOUBLE) / 100 AS cut_rate, rejected, returned
FROM exante_summary(${year});
