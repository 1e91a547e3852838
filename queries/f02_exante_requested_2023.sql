-- F2: amount requested by the reviewed projects, 万元.
SELECT requested_total FROM exante_summary(2023);
