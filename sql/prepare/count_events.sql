-- How many events a dataset has before any filter (to say why none passed the rating threshold).
SELECT count(*) FROM interactions WHERE dataset = $dataset;
