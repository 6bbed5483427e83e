"""hoprec Prefect flows: they compose tasks and own parameters; no data logic here."""
