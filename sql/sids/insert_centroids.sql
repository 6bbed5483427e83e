-- A version's codebooks from the registered `sid_new_centroids(level, code, centroid)`.
INSERT INTO sid_centroids
SELECT $sid_version, $dataset, level, code, centroid FROM sid_new_centroids
