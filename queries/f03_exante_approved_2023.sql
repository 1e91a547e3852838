-- F3: amount approved by the review, 万元.
SELECT approved_total FROM exante_summary(2023);
