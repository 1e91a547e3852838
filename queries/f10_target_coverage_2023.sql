-- F10: share of budget units that declared performance targets, and whose targets were reviewed, in percent.
SELECT 100 * coverage_rate(has_targets) AS declared_pct,
       100 * coverage_rate(targets_reviewed) AS reviewed_pct
FROM unit_budgets
WHERE year = 2023;
