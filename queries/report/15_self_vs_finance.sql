-- Self score against the finance evaluation where both exist; 10 points or more above is flagged.
SELECT s.object_code, s.name, s.total_score AS self_score, e.total_score AS finance_score,
       s.total_score - e.total_score AS difference,
       CASE WHEN s.total_score - e.total_score >= 10 THEN '自评虚高' ELSE '' END AS flag
FROM self_evaluation(${year}, 'project') s
JOIN evaluations e
  ON e.year = ${year} AND e.project_code = s.object_code AND e.eval_kind = 'finance_evaluation'
ORDER BY difference DESC, s.object_code;
