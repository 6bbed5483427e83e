SELECT nextval('snapshot_id_seq');
