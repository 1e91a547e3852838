-- Mid-year dual monitoring (双监控), June 2023: every red and yellow warning, worst first:
-- budget execution against time progress, and targets judged unlikely to be met.
SELECT * FROM monitoring_warnings(2023, 6) WHERE level <> 'green';
