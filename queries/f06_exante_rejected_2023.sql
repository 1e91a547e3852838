-- F6: reviewed projects concluded "not supported" (不予支持).
SELECT rejected FROM exante_summary(2023);
