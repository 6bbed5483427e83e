-- Record a finished stage (a repeat of the same key replaces its row).
DELETE FROM stage_runs WHERE dataset = $dataset AND stage = $stage AND input_key = $input_key;
INSERT INTO stage_runs VALUES ($dataset, $stage, $input_key, $output_json, now()::TIMESTAMP);
