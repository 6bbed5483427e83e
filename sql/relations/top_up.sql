-- The top-up rows computed in Python (`top_up.top_up_table`), registered as `rel_top_up_rows`.
CREATE OR REPLACE TEMP TABLE rel_top_up AS
SELECT src, dst, via, rank FROM rel_top_up_rows;
