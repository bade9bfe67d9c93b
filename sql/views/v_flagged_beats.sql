-- v_flagged_beats: the beats flagged as anomalous, with the model and threshold that judged them.
-- Grain: one row per (record_id, model_version) currently flagged.
-- Columns: record_id, patient_id, recorded_at, source, model_version, architecture,
--   model_status, loss, threshold, threshold_version, threshold_method, score_ratio
--   (loss / threshold; > 1 means flagged), severity (low < 1.5 <= medium < 3 <= high), baseline,
--   alert_state, run_id, flagged_at.
CREATE VIEW v_flagged_beats AS
SELECT a.record_id,
       a.patient_id,
       a.recorded_at,
       a.source,
       a.model_version,
       m.architecture,
       m.status AS model_status,
       a.loss,
       a.threshold,
       a.threshold_version,
       t.method AS threshold_method,
       a.score_ratio,
       a.severity,
       a.baseline,
       a.alert_state,
       a.run_id,
       a.flagged_at
FROM anomalies a
JOIN model_versions m ON m.version = a.model_version
LEFT JOIN thresholds t ON t.threshold_version = a.threshold_version
