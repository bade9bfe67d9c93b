-- The 20 worst beats flagged in the most recent recording day (UTC), with their model and threshold.
-- UTC_DAY is written in the database's dialect by `ecgmon db upgrade`/run_query; the filter
-- uses the index ix_anomalies_utc_day.
SELECT record_id, patient_id, recorded_at, model_version, loss, threshold, score_ratio, severity
FROM v_flagged_beats
WHERE UTC_DAY(recorded_at) = (
    SELECT MAX(UTC_DAY(recorded_at)) FROM anomalies
)
ORDER BY score_ratio DESC
LIMIT 20;
