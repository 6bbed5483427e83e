"""Raw data in, prepared sequences out: assets, formats, ingest, prepare and the warehouse."""
