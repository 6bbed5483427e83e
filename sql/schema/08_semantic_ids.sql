-- Semantic IDs (tasks.sids): versions of an RQ-KMeans quantization of the item embeddings.
-- A version is fixed once built: its centroids never change, and an item's SID, once given,
-- never changes (new items get SIDs by nearest centroid, see assign_new_items).
CREATE TABLE IF NOT EXISTS sid_versions (
    sid_version VARCHAR NOT NULL PRIMARY KEY,  -- <dataset>-rq<levels>x<codebook>-<hash8>
    dataset     VARCHAR NOT NULL,
    model       VARCHAR NOT NULL,              -- embedding model, as in item_embeddings.model
    method      VARCHAR NOT NULL,              -- rq-kmeans
    levels      INTEGER NOT NULL,              -- L: RQ levels (each SID has L + 1 codes)
    codebook    INTEGER NOT NULL,              -- codes per level after the small-catalogue shrink
    params_json VARCHAR NOT NULL,              -- everything the version id hashes
    stats_json  VARCHAR NOT NULL,              -- diagnostics (tasks.sids.diagnostics) + build info
    seconds     DOUBLE NOT NULL,
    created_at  TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS sid_centroids (
    sid_version VARCHAR NOT NULL,
    dataset     VARCHAR NOT NULL,
    level       INTEGER NOT NULL,              -- 1-based
    code        INTEGER NOT NULL,              -- 0-based
    centroid    FLOAT[] NOT NULL,
    PRIMARY KEY (sid_version, level, code)
);
CREATE TABLE IF NOT EXISTS semantic_ids (
    sid_version VARCHAR NOT NULL,
    dataset     VARCHAR NOT NULL,
    item_id     VARCHAR NOT NULL,              -- the stable key; item_idx may change on re-prepare
    item_idx    INTEGER NOT NULL,              -- item_idx when the SID was given
    codes       INTEGER[] NOT NULL,            -- L RQ codes, then the disambiguation code
    sid         VARCHAR NOT NULL,              -- <a_12><b_7><c_201><d_0>
    incremental BOOLEAN NOT NULL,              -- given by assign_new_items, not by the build
    PRIMARY KEY (sid_version, item_id),
    UNIQUE (sid_version, sid)
);
