-- A finished stage with this content key, if any.
SELECT output_json FROM stage_runs
WHERE dataset = $dataset AND stage = $stage AND input_key = $input_key
ORDER BY finished_at DESC
LIMIT 1;
