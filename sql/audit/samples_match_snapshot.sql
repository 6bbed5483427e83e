-- Item-task samples must be exactly their snapshot's lists (nothing added on the way).
WITH s AS (
    SELECT key, input_items[1] AS item, target_items FROM audit_samples WHERE task = $task
), r AS (
    SELECT src AS item, list(dst ORDER BY rank) AS targets
    FROM {table} WHERE snapshot_id = $snapshot_id AND rank <= $n GROUP BY src
)
SELECT count(*) AS checked,
       count(*) FILTER (WHERE r.targets IS DISTINCT FROM s.target_items) AS violations,
       any_value(s.key) FILTER (WHERE r.targets IS DISTINCT FROM s.target_items) AS example
FROM s LEFT JOIN r USING (item);
