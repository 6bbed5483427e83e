-- The staged rows a reader left in the `stage` table, as the stage part of a check.
SELECT * FROM stage
