-- v_drift: drift of each run's loss distribution against its model's normal reference, over time.
-- Grain: one row per pipeline run with a drift measurement (drift_psi not NULL), i.e. per score
--   run that scored beats.
-- Columns: run_id, flow, day (the UTC day of started_at: a date on PostgreSQL,
--   text YYYY-MM-DD on SQLite), started_at, model_version,
--   threshold_version, n_scored, n_flagged, anomaly_rate (flagged / scored, 0..1), drift_psi
--   (population stability index on 10 quantile bins of the reference; > 0.25 is a large shift),
--   run_mean_loss, reference_loss_mean (model_versions.loss_mean), mean_loss_ratio
--   (run_mean_loss / reference_loss_mean), drift_detail (JSON: psi, ks, n_observed,
--   n_reference, observed_mean, reference_mean, bins, observed_shares), alert_state.
CREATE VIEW v_drift AS
SELECT r.run_id,
       r.flow,
       UTC_DAY(r.started_at) AS day,
       r.started_at,
       r.model_version,
       r.threshold_version,
       r.n_scored,
       r.n_flagged,
       CASE WHEN r.n_scored > 0 THEN 1.0 * r.n_flagged / r.n_scored END AS anomaly_rate,
       r.drift_psi,
       CASE WHEN r.n_scored > 0 THEN r.loss_sum / r.n_scored END AS run_mean_loss,
       m.loss_mean AS reference_loss_mean,
       CASE WHEN r.n_scored > 0 AND m.loss_mean > 0
            THEN r.loss_sum / r.n_scored / m.loss_mean END AS mean_loss_ratio,
       r.drift AS drift_detail,
       r.alert_state
FROM pipeline_runs r
LEFT JOIN model_versions m ON m.version = r.model_version
WHERE r.drift_psi IS NOT NULL
