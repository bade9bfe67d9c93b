-- v_daily_anomaly_rate: how many beats were scored and flagged per recording day and model.
-- Grain: one row per (day of recorded_at in UTC, model_version).
-- Columns: day (text, YYYY-MM-DD), model_version, beats_scored, beats_flagged,
--   anomaly_rate (flagged / scored, 0..1), mean_loss, max_loss, patients (distinct patient_id).
CREATE VIEW v_daily_anomaly_rate AS
SELECT SUBSTR(CAST(s.recorded_at AS VARCHAR(40)), 1, 10) AS day,
       s.model_version,
       COUNT(*) AS beats_scored,
       SUM(CASE WHEN s.is_anomaly THEN 1 ELSE 0 END) AS beats_flagged,
       AVG(CASE WHEN s.is_anomaly THEN 1.0 ELSE 0.0 END) AS anomaly_rate,
       AVG(s.loss) AS mean_loss,
       MAX(s.loss) AS max_loss,
       COUNT(DISTINCT s.patient_id) AS patients
FROM scores s
GROUP BY SUBSTR(CAST(s.recorded_at AS VARCHAR(40)), 1, 10), s.model_version
