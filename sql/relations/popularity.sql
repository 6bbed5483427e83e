-- Item popularity in the snapshot's events: the first tie-breaker of every neighbour ranking.
CREATE OR REPLACE TEMP TABLE rel_pop AS
SELECT item_idx, count(*) AS pop FROM rel_input GROUP BY item_idx;
