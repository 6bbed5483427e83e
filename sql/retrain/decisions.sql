-- A dataset's decisions, newest first.
SELECT challenger_id, champion_id, users, challenger_ndcg, champion_ndcg, diff_low, diff_high,
       margin, promoted, reason, decided_at
FROM model_decisions WHERE dataset = $dataset ORDER BY decided_at DESC;
