-- An empty reject list, for readers that decode no text lines themselves.
CREATE OR REPLACE TEMP TABLE rejected (line_no BIGINT, raw VARCHAR, reason VARCHAR);
