-- Pair counts within a window of $window following positions (one-hop transitions: window 1,
-- directed). Each of a user's events is paired with the next $window events (a LEAD frame, one
-- window sort); self-pairs are dropped. Symmetric pairs are kept once as (least, greatest) and
-- expanded to both directions when ranked; w is the weight numerator (here the count).
CREATE OR REPLACE TEMP TABLE rel_pairs AS
WITH following AS (
    SELECT item_idx AS a,
           list(item_idx) OVER (PARTITION BY user_idx ORDER BY pos
                                ROWS BETWEEN 1 FOLLOWING AND $window FOLLOWING) AS nxt
    FROM rel_input
), pairs AS (
    SELECT a, unnest(nxt) AS b FROM following
)
SELECT CASE WHEN $directed THEN a ELSE least(a, b) END AS a,
       CASE WHEN $directed THEN b ELSE greatest(a, b) END AS b,
       count(*) AS n, count(*) AS w
FROM pairs WHERE a <> b
GROUP BY ALL;
