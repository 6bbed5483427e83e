-- A version's centroids, level by level, code by code.
SELECT level, code, centroid FROM sid_centroids WHERE sid_version = $sid_version
ORDER BY level, code
