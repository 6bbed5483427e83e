-- Keep one champion/challenger decision.
INSERT INTO model_decisions VALUES (
    $dataset, $challenger_id, $champion_id, 'valid', $users, $challenger_ndcg, $champion_ndcg,
    $diff_low, $diff_high, $margin, $promoted, $reason, now()::TIMESTAMP
);
