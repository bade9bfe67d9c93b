-- v_run_summary: one line per pipeline run, for operators checking that the feed is healthy.
-- Grain: one row per run_id (a Prefect flow run, or a command-line run).
-- Columns: run_id, flow, status, source, model_version, threshold_version, n_read, n_scored,
--   n_rejected, n_flagged, anomaly_rate (flagged / scored, NULL when nothing was scored),
--   conserved (1 when n_read = n_scored + n_rejected, else 0), mean_loss, drift_psi,
--   alert_state, started_at, finished_at, error.
CREATE VIEW v_run_summary AS
SELECT r.run_id,
       r.flow,
       r.status,
       r.source,
       r.model_version,
       r.threshold_version,
       r.n_read,
       r.n_scored,
       r.n_rejected,
       r.n_flagged,
       CASE WHEN r.n_scored > 0 THEN 1.0 * r.n_flagged / r.n_scored END AS anomaly_rate,
       CASE WHEN r.n_read = r.n_scored + r.n_rejected THEN 1 ELSE 0 END AS conserved,
       CASE WHEN r.n_scored > 0 THEN r.loss_sum / r.n_scored END AS mean_loss,
       r.drift_psi,
       r.alert_state,
       r.started_at,
       r.finished_at,
       r.error
FROM pipeline_runs r
