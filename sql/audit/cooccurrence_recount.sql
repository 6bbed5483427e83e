-- Recount, from the allowed events only, every co-occurrence pair a sample uses, with a
-- position-range self-join (a different query shape from the one that built the snapshot).
-- A stored count that differs means the snapshot saw events the audit does not allow.
WITH ev AS (
    SELECT user_idx, pos, item_idx FROM sequences
    WHERE dataset = $dataset AND NOT list_contains($held_out, split)
      AND ts < CAST($as_of AS TIMESTAMP)
), pairs AS (
    SELECT src, dst, n FROM cooccurrence
    WHERE snapshot_id = $snapshot_id AND via IS NULL AND rank <= $n
), recount AS (
    SELECT p.src, p.dst, count(*) AS n
    FROM pairs p
    JOIN ev a ON a.item_idx = p.src
    JOIN ev b ON b.user_idx = a.user_idx AND b.item_idx = p.dst
    WHERE b.pos <> a.pos AND abs(b.pos - a.pos) <= $window AND (NOT $directed OR b.pos > a.pos)
    GROUP BY p.src, p.dst
)
SELECT count(*) AS checked, count(*) FILTER (WHERE r.n IS DISTINCT FROM p.n) AS violations,
       any_value(p.src || '->' || p.dst) FILTER (WHERE r.n IS DISTINCT FROM p.n) AS example
FROM pairs p LEFT JOIN recount r USING (src, dst);
