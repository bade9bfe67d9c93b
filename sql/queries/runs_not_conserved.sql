-- Runs whose counts do not add up (read != scored + rejected), or that did not complete.
SELECT run_id, flow, status, n_read, n_scored, n_rejected, started_at, error
FROM v_run_summary
WHERE conserved = 0 OR status <> 'completed'
ORDER BY started_at DESC;
