-- Like pair_counts, weighted by 1/hop. The weight is kept as an exact integer numerator
-- (sum of $lcm // hop, $lcm = lcm(1..window)) so ties stay ties; it is divided once at the end.
CREATE OR REPLACE TEMP TABLE rel_pairs AS
WITH following AS (
    SELECT item_idx AS a,
           list(item_idx) OVER (PARTITION BY user_idx ORDER BY pos
                                ROWS BETWEEN 1 FOLLOWING AND $window FOLLOWING) AS nxt
    FROM rel_input
), pairs AS (
    SELECT a, unnest(nxt) AS b, unnest(range(1, len(nxt) + 1)) AS hop FROM following
)
SELECT CASE WHEN $directed THEN a ELSE least(a, b) END AS a,
       CASE WHEN $directed THEN b ELSE greatest(a, b) END AS b,
       count(*) AS n, sum($lcm // hop)::BIGINT AS w
FROM pairs WHERE a <> b
GROUP BY ALL;
