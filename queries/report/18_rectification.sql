-- Rectification of the year's problems by source, with the on-time rate.
SELECT CASE r.source WHEN 'exante' THEN '事前绩效评估' WHEN 'monitoring' THEN '绩效监控'
                     WHEN 'evaluation' THEN '绩效评价' ELSE '部门整体评价' END AS source_name,
       count(*) AS items, count(r.closed_date) AS closed,
       count(*) FILTER (WHERE r.closed_date <= r.due_date) AS on_time,
       count(*) - count(r.closed_date) AS still_open,
       rectification_rate(r.closed_date, r.due_date) AS on_time_rate
FROM rectifications r
WHERE r.year = ${year}
GROUP BY r.source
ORDER BY r.source;
