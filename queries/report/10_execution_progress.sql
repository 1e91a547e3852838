-- Budget execution of every department and project month by month, against time progress.
SELECT as_of_month AS month, '预算执行进度' AS series,
       CAST(sum(executed_amount) AS DOUBLE) / CAST(sum(budget_amount) AS DOUBLE) AS progress_rate
FROM budget_execution
WHERE year = ${year} AND as_of_month <= ${month}
GROUP BY as_of_month
UNION ALL
SELECT DISTINCT as_of_month, '时间进度', CAST(as_of_month AS DOUBLE) / 12
FROM budget_execution
WHERE year = ${year} AND as_of_month <= ${month}
ORDER BY series, month;
