-- v_daily_anomaly_rate: how many beats were scored and flagged per recording day and model.
-- Grain: one row per (day of recorded_at in UTC, model_version), whatever the session's time zone.
-- Columns: day (the UTC day: a date on PostgreSQL, text YYYY-MM-DD on SQLite), model_version,
--   beats_scored, beats_flagged, anomaly_rate (flagged / scored, 0..1), mean_loss, max_loss,
--   patients (distinct patient_id).
-- UTC_DAY is the UTC day of a timestamp; `ecgmon db upgrade` writes it in each dialect
-- (ecgmon.storage.engine.utc_day_sql). A one-day filter (WHERE day = '2026-11-12') uses the
-- index ix_scores_utc_day (migration 0004).
CREATE VIEW v_daily_anomaly_rate AS
SELECT UTC_DAY(s.recorded_at) AS day,
       s.model_version,
       COUNT(*) AS beats_scored,
       SUM(CASE WHEN s.is_anomaly THEN 1 ELSE 0 END) AS beats_flagged,
       AVG(CASE WHEN s.is_anomaly THEN 1.0 ELSE 0.0 END) AS anomaly_rate,
       AVG(s.loss) AS mean_loss,
       MAX(s.loss) AS max_loss,
       COUNT(DISTINCT s.patient_id) AS patients
FROM scores s
GROUP BY UTC_DAY(s.recorded_at), s.model_version
