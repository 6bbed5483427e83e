-- Store an evaluation's rows from the registered Arrow table `eval_rows`.
INSERT INTO eval_results
SELECT $eval_id, $dataset, model, $split, kind, "group", metric, k, value, now()::TIMESTAMP
FROM eval_rows;
