-- An evaluation rerun replaces its rows.
DELETE FROM eval_results WHERE eval_id = $eval_id;
