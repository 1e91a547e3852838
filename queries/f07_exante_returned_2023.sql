-- F7: projects returned without review (实施条件不成熟退回).
SELECT returned FROM exante_summary(2023);
