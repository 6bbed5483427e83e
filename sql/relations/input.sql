-- The snapshot's training events as the temp table `rel_input` (see relations/input_rows).
CREATE OR REPLACE TEMP TABLE rel_input AS SELECT * FROM {rows};
