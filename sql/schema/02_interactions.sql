-- Every good interaction event, exactly once per (dataset, user, item, ts, rating). `line_no` is
-- the event's position in its batch's file, the source order that `prepare --tie-break source`
-- keeps for events of the same timestamp.
CREATE TABLE IF NOT EXISTS interactions (
    dataset  VARCHAR NOT NULL,
    user_id  VARCHAR NOT NULL,
    item_id  VARCHAR NOT NULL,
    ts       TIMESTAMP NOT NULL,
    rating   DOUBLE,
    batch_id BIGINT NOT NULL,
    line_no  BIGINT
);
-- warehouses made before the column existed get it (NULL: no known file position)
ALTER TABLE interactions ADD COLUMN IF NOT EXISTS line_no BIGINT;
