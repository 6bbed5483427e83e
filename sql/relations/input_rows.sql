-- The snapshot's training events: prepared sequences strictly before $as_of, never a test
-- target, and in strict mode never a validation target either. What is dropped is always a
-- suffix of a user's sequence, so each user's kept events stay in order. One SELECT: loaded
-- as `rel_input` (relations/input), or streamed to Parquet for shards (pairs.export_input).
SELECT user_idx, pos, item_idx
FROM sequences
WHERE dataset = $dataset
  AND ts < CAST($as_of AS TIMESTAMP)
  AND split <> 'test'
  AND (NOT $strict OR split <> 'valid')
