-- Warnings of the monitored month by level and kind: how many, and their budgets.
SELECT CASE level WHEN 'red' THEN '红色预警' WHEN 'yellow' THEN '黄色预警' ELSE '正常' END
         || '·' || CASE object_kind WHEN 'dept' THEN '部门' ELSE '项目' END AS warning,
       count(*) AS objects, sum(budget_amount) AS budget_amount,
       sum(executed_amount) AS executed_amount,
       CAST(sum(executed_amount) AS DOUBLE) / CAST(sum(budget_amount) AS DOUBLE) AS execution_rate
FROM monitoring_warnings(${year}, ${month})
GROUP BY level, object_kind
ORDER BY min(CASE level WHEN 'red' THEN 0 WHEN 'yellow' THEN 1 ELSE 2 END), object_kind;
