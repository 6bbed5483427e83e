"""SQL files of hoprec, one statement set per file; read with tasks.warehouse.sql_text."""
