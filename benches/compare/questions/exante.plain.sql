-- Ex-ante review totals of 2023. Returned projects are not reviewed: they count only
-- in returned. cut_rate is Σcut / Σrequested in percent, rounded half-up to two
-- decimals on exact integers: floor((cut·10000·2 + requested) / (2·requested)) in
-- cents, with the floor written as (a - a % b) / b so it is exact in every engine.
WITH totals AS (
  SELECT count(CASE WHEN conclusion <> 'returned' THEN 1 END) AS projects_reviewed,
         coalesce(sum(CASE WHEN conclusion <> 'returned' THEN requested_amount END), 0) AS requested_total,
         coalesce(sum(CASE WHEN conclusion <> 'returned' THEN approved_amount END), 0) AS approved_total,
         count(CASE WHEN conclusion = 'reject' THEN 1 END) AS rejected,
         count(CASE WHEN conclusion = 'returned' THEN 1 END) AS returned
  FROM exante_reviews
  WHERE year = 2023
  HAVING count(*) > 0),
fraction AS (
  SELECT *,
         CAST((requested_total - approved_total) * 100 AS BIGINT) * 20000
           + CAST(requested_total * 100 AS BIGINT) AS num,
         CAST(requested_total * 100 AS BIGINT) * 2 AS den
  FROM totals)
SELECT projects_reviewed, requested_total, approved_total,
       requested_total - approved_total AS cut_total,
       CASE WHEN den = 0 THEN NULL
            ELSE CAST((num - num % den) / den AS DOUBLE) / 100 END AS cut_rate,
       rejected, returned
FROM fraction;
