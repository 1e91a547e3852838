-- The year's results in the next budget: every decision, those against the policy first.
SELECT object_code, name, budget_year, score, grade, requested_amount, approved_amount, change,
       action, CASE WHEN follows_policy THEN '是' ELSE '否' END AS follows_policy
FROM results_application(${year});
