-- v_model_history: every model version with its threshold versions, newest first in use.
-- Grain: one row per threshold version (a model version without thresholds appears once with
--   NULL threshold columns).
-- Columns: model_version, architecture, input_length, model_status, train_size,
--   calibration_size, loss_mean, loss_std, artifact_sha256, model_created_at, promoted_at,
--   patient_id, threshold_version, threshold_method, threshold_value, threshold_active,
--   threshold_created_at.
CREATE VIEW v_model_history AS
SELECT m.version AS model_version,
       m.architecture,
       m.input_length,
       m.status AS model_status,
       m.train_size,
       m.calibration_size,
       m.loss_mean,
       m.loss_std,
       m.artifact_sha256,
       m.created_at AS model_created_at,
       m.promoted_at,
       m.patient_id,
       t.threshold_version,
       t.method AS threshold_method,
       t.value AS threshold_value,
       t.active AS threshold_active,
       t.created_at AS threshold_created_at
FROM model_versions m
LEFT JOIN thresholds t ON t.model_version = m.version
