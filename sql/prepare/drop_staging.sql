-- Clear prepare's temp tables.
DROP TABLE IF EXISTS kc;
DROP TABLE IF EXISTS idx;
DROP TABLE IF EXISTS seq;
