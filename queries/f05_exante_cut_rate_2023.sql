-- F5: average cut rate = Σcut / Σrequested (not a mean of rates), in percent,
-- rounded half-up to two decimals. Decimal arithmetic keeps it exact.
SELECT round(
         CAST(sum(requested_amount) - sum(approved_amount) AS DECIMAL(38, 10)) * 100
           / sum(requested_amount),
         2) AS cut_rate_pct
FROM exante_reviews
WHERE year = 2023 AND conclusion <> 'returned';
