-- Results used in the next budget (结果应用): 2023's evaluations in the 2024 decisions, by
-- grade and action, and how many decisions go against the grade → action policy.
SELECT grade, action, count(*) AS decisions,
       sum(requested_amount) AS requested, sum(approved_amount) AS approved,
       count(*) FILTER (WHERE NOT follows_policy) AS against_policy
FROM results_application(2023)
GROUP BY grade, action
ORDER BY min(score) DESC, action;
