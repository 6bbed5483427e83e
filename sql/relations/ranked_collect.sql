-- One partition of the ranked lists into `rel_ranked`: the first creates it, later ones append.
CREATE TEMP TABLE IF NOT EXISTS rel_ranked AS SELECT * FROM rel_ranked_part LIMIT 0;
INSERT INTO rel_ranked SELECT * FROM rel_ranked_part;
DROP TABLE rel_ranked_part;
