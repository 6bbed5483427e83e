-- How many rows of a table one batch loaded ({table}: interactions, items or quarantine).
SELECT count(*) FROM {table} WHERE batch_id = $batch_id;
