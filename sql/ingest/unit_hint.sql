-- How many parsed timestamps of the batch lie after 2200: most of them means epoch
-- milliseconds (or microseconds) read as seconds.
SELECT count(*) FILTER (WHERE ts > TIMESTAMP '2200-01-01') AS late, count(ts) AS parsed
FROM checked;
