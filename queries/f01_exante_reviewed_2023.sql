-- F1: key projects given an ex-ante review in 2023 (returned projects were not reviewed).
SELECT projects_reviewed FROM exante_summary(2023);
