-- F4: amount cut by the review (requested − approved), 万元.
SELECT cut_total FROM exante_summary(2023);
