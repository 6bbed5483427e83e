-- A fresh start for the ranked lists a snapshot gathers part by part.
DROP TABLE IF EXISTS rel_ranked;
DROP TABLE IF EXISTS rel_ranked_part;
