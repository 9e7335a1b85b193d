-- Provenance of every ingest, newest first.
SELECT run_id, model, random_init, source, split, status, n_items, n_rows, dtype, device,
       started_at, ended_at
FROM runs
ORDER BY started_at DESC
