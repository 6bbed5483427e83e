"""SQL files of hoprec, one statement set per file, a folder a stage; read with
`hoprec.tasks.data.warehouse.sql_text`."""
