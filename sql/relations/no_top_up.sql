-- No top-up rows (top-up off, or no semantic snapshot to draw from).
CREATE OR REPLACE TEMP TABLE rel_top_up AS
SELECT 0 AS src, 0 AS dst, 0 AS via, 0 AS rank LIMIT 0;
