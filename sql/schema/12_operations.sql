-- Batch recommendations: each user's top-K of one model, replaced whole on every refresh.
CREATE TABLE IF NOT EXISTS recommendations (
    dataset    VARCHAR NOT NULL,
    model_id   VARCHAR NOT NULL,          -- a `models` row, or <dataset>-<baseline>
    user_id    VARCHAR NOT NULL,
    rank       INTEGER NOT NULL,          -- 1 = best
    item_id    VARCHAR NOT NULL,
    score      DOUBLE NOT NULL,
    created_at TIMESTAMP NOT NULL
);
-- Champion/challenger decisions of `hoprec retrain`: both validation scores, the margin, the
-- outcome and why. One row a decision; the `models` rows say which model is champion now.
CREATE TABLE IF NOT EXISTS model_decisions (
    dataset          VARCHAR NOT NULL,
    challenger_id    VARCHAR NOT NULL,
    champion_id      VARCHAR,             -- NULL: there was no champion
    split            VARCHAR NOT NULL,    -- always valid: test never decides
    users            INTEGER NOT NULL,
    challenger_ndcg  DOUBLE NOT NULL,     -- validation NDCG@10
    champion_ndcg    DOUBLE,
    diff_low         DOUBLE,              -- paired bootstrap 95% interval of challenger - champion
    diff_high        DOUBLE,
    margin           DOUBLE NOT NULL,
    promoted         BOOLEAN NOT NULL,
    reason           VARCHAR NOT NULL,
    decided_at       TIMESTAMP NOT NULL
);
-- Finished stages of a retrain, by content key (the stage, its parameters and its inputs'
-- own keys): a rerun after a crash finds them and skips the work.
CREATE TABLE IF NOT EXISTS stage_runs (
    dataset     VARCHAR NOT NULL,
    stage       VARCHAR NOT NULL,
    input_key   VARCHAR NOT NULL,
    output_json VARCHAR NOT NULL,
    finished_at TIMESTAMP NOT NULL
);
