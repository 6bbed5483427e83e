-- Item metadata; a later batch replaces an item's row.
CREATE TABLE IF NOT EXISTS items (
    dataset     VARCHAR NOT NULL,
    item_id     VARCHAR NOT NULL,
    title       VARCHAR,
    description VARCHAR,
    categories  VARCHAR[],
    batch_id    BIGINT NOT NULL
);
