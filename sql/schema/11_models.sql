-- Trained models: one row a finished run (LLM fine-tunes, SASRec, the SID transformer).
CREATE TABLE IF NOT EXISTS models (
    model_id     VARCHAR NOT NULL,        -- <dataset>-<kind>-<tasks>-<hash>
    dataset      VARCHAR NOT NULL,
    kind         VARCHAR NOT NULL,        -- llm-lora | llm-full | sasrec | tiger
    base         VARCHAR,                 -- base model (LLMs)
    build_id     VARCHAR,                 -- instruction build trained on (LLMs)
    sid_version  VARCHAR,
    tasks        VARCHAR,                 -- comma-separated instruction tasks
    params_json  VARCHAR NOT NULL,
    steps        INTEGER NOT NULL,
    final_loss   DOUBLE,
    seconds      DOUBLE,
    path         VARCHAR NOT NULL,
    status       VARCHAR NOT NULL,        -- trained | promoted
    created_at   TIMESTAMP NOT NULL
);
