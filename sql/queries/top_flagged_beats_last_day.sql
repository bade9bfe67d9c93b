-- The 20 worst beats flagged in the most recent recording day, with their model and threshold.
SELECT record_id, patient_id, recorded_at, model_version, loss, threshold, score_ratio, severity
FROM v_flagged_beats
WHERE SUBSTR(CAST(recorded_at AS VARCHAR(40)), 1, 10) = (
    SELECT MAX(SUBSTR(CAST(recorded_at AS VARCHAR(40)), 1, 10)) FROM anomalies
)
ORDER BY score_ratio DESC
LIMIT 20;
