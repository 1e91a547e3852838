-- F5: average cut rate = Σcut / Σrequested (not a mean of rates), in percent,
-- rounded half-up to two decimals.
SELECT cut_rate FROM exante_summary(2023);
