-- Every good interaction event, exactly once per (dataset, user, item, ts, rating).
CREATE TABLE IF NOT EXISTS interactions (
    dataset  VARCHAR NOT NULL,
    user_id  VARCHAR NOT NULL,
    item_id  VARCHAR NOT NULL,
    ts       TIMESTAMP NOT NULL,
    rating   DOUBLE,
    batch_id BIGINT NOT NULL
);
