-- Self-evaluation against the finance evaluation, 2023 (自评结果复核): where both exist, how
-- far the self score is above the finance bureau's; 10 points or more is flagged inflated.
SELECT s.object_code AS project_code, s.name, s.total_score AS self_score,
       e.total_score AS finance_score, s.total_score - e.total_score AS difference,
       s.total_score - e.total_score >= 10 AS inflated
FROM self_evaluation(2023, 'project') s
JOIN evaluations e
  ON e.year = 2023 AND e.project_code = s.object_code AND e.eval_kind = 'finance_evaluation'
ORDER BY difference DESC, project_code;
