-- Quarantined rows of some batches, grouped by file and kind of reason, with the first example.
SELECT path,
       CASE WHEN reason LIKE 'unparseable timestamp%' THEN 'unparseable timestamp'
            ELSE split_part(reason, ':', 1) END AS reason,
       count(*) AS rows, min(line_no) AS first_line,
       arg_min(left(coalesce(raw, ''), 80), line_no) AS example
FROM quarantine
WHERE list_contains($batch_ids, batch_id)
GROUP BY ALL ORDER BY rows DESC LIMIT 50;
