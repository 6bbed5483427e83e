-- Item popularity read from a sharded snapshot's exported events (streamed from Parquet, so the
-- merging process never holds the whole input): the same counts `popularity` gives.
CREATE OR REPLACE TEMP TABLE rel_pop AS
SELECT item_idx, count(*) AS pop FROM read_parquet($path) GROUP BY item_idx;
