"""hoprec stage tasks and the plain functions behind them, one module a stage."""
from tasks.config import bootstrap_prefect_env

bootstrap_prefect_env()
