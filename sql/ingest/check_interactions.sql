-- Typed interaction rows, each with the reason it cannot load (NULL when it can). Ids are
-- trimmed of spaces, tabs and line ends. ISO timestamps with an offset (`Z`, `+02:00`, `-0500`)
-- are converted to UTC, naive ones are taken as UTC; a timestamp outside [$ts_min, $ts_max] is
-- quarantined (zero or negative epochs, milliseconds read as seconds, year-3000 typos), and so
-- is a rating that is not a finite number. The stage part is the staged rows (the `stage` table, or
-- the reader's SELECT run inside this one); only bad rows keep their raw text.
CREATE OR REPLACE TEMP TABLE checked AS
WITH typed AS (
    SELECT *,
           -- trimming with a character set is slow; only ids that start or end with a
           -- character below '!' (space, tab, line end, control) can need it
           CASE WHEN user_id < '!' OR right(user_id, 1) < '!'
                THEN trim(user_id, chr(32) || chr(9) || chr(13) || chr(10)) ELSE user_id
           END AS uid,
           CASE WHEN item_id < '!' OR right(item_id, 1) < '!'
                THEN trim(item_id, chr(32) || chr(9) || chr(13) || chr(10)) ELSE item_id
           END AS iid,
           CASE WHEN $ts_unit <> 'iso' THEN
                    try(make_timestamp(CAST(TRY_CAST(ts_raw AS DOUBLE)
                        * CASE $ts_unit WHEN 's' THEN 1e6 WHEN 'ms' THEN 1e3 ELSE 1 END AS BIGINT)))
                WHEN regexp_matches(trim(ts_raw),
                                    '[0-9]:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)? ?(Z|[+-][0-9]{2}(:?[0-9]{2})?)$')
                THEN timezone('UTC', TRY_CAST(trim(ts_raw) AS TIMESTAMPTZ))
                ELSE TRY_CAST(ts_raw AS TIMESTAMP)
           END AS ts,
           TRY_CAST(rating_raw AS DOUBLE) AS rating
    FROM {stage}
), reasoned AS (
SELECT line_no, raw, uid AS user_id, iid AS item_id, ts, rating,
       parse_error IS NULL AS parsed, user_id IS NOT NULL AS has_user,
       item_id IS NOT NULL AS has_item, ts_raw IS NOT NULL AS has_ts,
       CASE WHEN parse_error IS NOT NULL THEN parse_error
            WHEN uid IS NULL OR uid = '' THEN 'empty user_id'
            WHEN iid IS NULL OR iid = '' THEN 'empty item_id'
            WHEN ts_raw IS NULL OR (ts_raw < '!' AND trim(ts_raw) = '') THEN 'missing timestamp'
            WHEN ts IS NULL THEN 'unparseable timestamp ' || ts_raw || ' (unit ' || $ts_unit || ')'
            WHEN $ts_min IS NOT NULL
                 AND (ts < CAST($ts_min AS TIMESTAMP) OR ts > CAST($ts_max AS TIMESTAMP))
            THEN 'timestamp ' || ts_raw || ' (unit ' || $ts_unit || ') is ' || ts
                 || ', outside ' || $ts_min || ' .. ' || $ts_max
            WHEN rating IS NULL AND trim(coalesce(rating_raw, '')) <> ''
            THEN 'rating is not a number: ' || rating_raw
            WHEN rating IS NOT NULL AND NOT isfinite(rating) THEN 'rating is not finite: ' || rating_raw
       END AS reason
FROM typed
)
SELECT * REPLACE (CASE WHEN reason IS NOT NULL THEN raw END AS raw) FROM reasoned;
