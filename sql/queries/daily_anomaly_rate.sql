-- Daily anomaly rate of the champion model, oldest day first.
SELECT d.day, d.beats_scored, d.beats_flagged, ROUND(d.anomaly_rate, 4) AS anomaly_rate
FROM v_daily_anomaly_rate d
JOIN model_versions m ON m.version = d.model_version AND m.status = 'champion'
ORDER BY d.day;
