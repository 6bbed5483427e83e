-- Every code list of a version, in item_idx order (diagnostics after new items were added).
SELECT codes FROM semantic_ids WHERE sid_version = $sid_version ORDER BY item_idx, item_id
