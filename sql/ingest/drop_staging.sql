-- Clear one batch's staging tables and views.
DROP TABLE IF EXISTS stage;
DROP VIEW IF EXISTS raw_lines;
DROP VIEW IF EXISTS raw_lines_read;
DROP TABLE IF EXISTS set_aside;
DROP TABLE IF EXISTS quoted_records;
DROP TABLE IF EXISTS quoted_lines;
DROP TABLE IF EXISTS raw_read;
DROP VIEW IF EXISTS docs;
DROP TABLE IF EXISTS docs_converted;
DROP TABLE IF EXISTS docs_object;
DROP TABLE IF EXISTS checked;
DROP TABLE IF EXISTS rejected;
DROP TABLE IF EXISTS new_items;
