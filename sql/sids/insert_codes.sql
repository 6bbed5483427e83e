-- SIDs from the registered `sid_new_codes(item_id, item_idx, codes, sid)`; the primary key and
-- the unique SID constraint refuse a second SID for an item or a SID given twice.
INSERT INTO semantic_ids
SELECT $sid_version, $dataset, item_id, item_idx, codes, sid, $incremental FROM sid_new_codes
