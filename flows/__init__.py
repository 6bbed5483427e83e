"""hoprec Prefect flows: they compose tasks and own parameters; no data logic here."""
import tasks  # noqa: F401  (sets Prefect's environment before prefect is imported)
