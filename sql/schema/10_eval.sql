-- Evaluation results: one row a (evaluation, model, split, user group, metric, k).
CREATE TABLE IF NOT EXISTS eval_results (
    eval_id    VARCHAR NOT NULL,
    dataset    VARCHAR NOT NULL,
    model      VARCHAR NOT NULL,
    split      VARCHAR NOT NULL,             -- valid | test
    group_kind VARCHAR NOT NULL,             -- memorization (IIRG one-hop groups) | memgen
    group_name VARCHAR NOT NULL,             -- all | memorization | non-memorization | memgen:<category>
    metric     VARCHAR NOT NULL,             -- recall | ndcg | mrr | coverage | entropy | ...
    k          INTEGER NOT NULL,             -- 0 for full-catalogue metrics (mrr, users)
    value      DOUBLE NOT NULL,
    created_at TIMESTAMP NOT NULL
);
