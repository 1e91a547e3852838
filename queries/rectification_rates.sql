-- Rectification (整改) of 2023's problems by source: items, closed, closed on time, still
-- open, and the on-time rate (评价—反馈—整改—提升).
SELECT source, count(*) AS items, count(closed_date) AS closed,
       count(*) FILTER (WHERE closed_date <= due_date) AS on_time,
       count(*) - count(closed_date) AS still_open,
       round(rectification_rate(closed_date, due_date) * 100, 2) AS on_time_pct
FROM rectifications
WHERE year = 2023
GROUP BY source
ORDER BY source;
