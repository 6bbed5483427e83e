-- Size, density and sequence-length quantiles of the prepared dataset.
WITH lens AS (SELECT user_id, count(*) AS n FROM seq GROUP BY user_id)
SELECT (SELECT count(*) FROM lens) AS users,
       (SELECT count(*) FROM idx) AS items,
       (SELECT count(*) FROM seq) AS interactions,
       (SELECT count(*) FROM seq)::DOUBLE / ((SELECT count(*) FROM lens) * (SELECT count(*) FROM idx)) AS density,
       (SELECT quantile_cont(n, [0.1, 0.25, 0.5, 0.75, 0.9]) FROM lens) AS len_quantiles,
       (SELECT min(n) FROM lens) AS len_min,
       (SELECT max(n) FROM lens) AS len_max,
       (SELECT count(*) FROM seq WHERE split = 'train') AS train_events,
       (SELECT count(*) FROM seq WHERE split = 'valid') AS valid_events,
       (SELECT count(*) FROM seq WHERE split = 'test') AS test_events,
       -- users whose test / validation target shares its timestamp with another of their events:
       -- the tie-break rule, not time, decides those targets
       (SELECT count(DISTINCT s.user_id) FROM seq s JOIN seq o
          ON o.user_id = s.user_id AND o.pos <> s.pos AND o.ts = s.ts
        WHERE s.split = 'test') AS test_ties,
       (SELECT count(DISTINCT s.user_id) FROM seq s JOIN seq o
          ON o.user_id = s.user_id AND o.pos <> s.pos AND o.ts = s.ts
        WHERE s.split = 'valid') AS valid_ties,
       -- content fingerprint: relation snapshots built on other prepared data are not reused
       (SELECT md5(concat(coalesce(bit_xor(hash(user_idx, pos, item_idx, ts, split)), 0)::VARCHAR, '/',
                          (SELECT coalesce(bit_xor(hash(item_id, item_idx)), 0) FROM idx)::VARCHAR))
        FROM seq) AS fingerprint;
