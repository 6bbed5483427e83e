-- Record a finished training run (a rerun of the same model replaces its row, keeping promotion).
CREATE OR REPLACE TEMP TABLE _prev_status AS
    SELECT status FROM models WHERE model_id = $model_id;
DELETE FROM models WHERE model_id = $model_id;
INSERT INTO models
SELECT $model_id, $dataset, $kind, $base, $build_id, $sid_version, $tasks, $params_json, $steps,
       $final_loss, $seconds, $path, coalesce((SELECT max(status) FROM _prev_status), 'trained'),
       now()::TIMESTAMP;
