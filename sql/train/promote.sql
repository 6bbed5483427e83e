-- Make one model the dataset's champion; every other model of the dataset goes back to trained
-- (one champion a dataset: what `hoprec recommend --model champion` serves).
UPDATE models SET status = CASE WHEN model_id = $model_id THEN 'promoted' ELSE 'trained' END
WHERE dataset = $dataset;
