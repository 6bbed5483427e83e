-- Swap the dataset's prepared tables for the new ones (called inside one transaction).
DELETE FROM item_index WHERE dataset = $dataset;
INSERT INTO item_index SELECT $dataset, item_id, item_idx FROM idx;
DELETE FROM sequences WHERE dataset = $dataset;
INSERT INTO sequences SELECT $dataset, user_id, user_idx, pos, item_idx, ts, split FROM seq;
DELETE FROM prepare_runs WHERE dataset = $dataset;
INSERT INTO prepare_runs VALUES ($dataset, $params_json, $stats_json, $parquet_dir, now()::TIMESTAMP);
