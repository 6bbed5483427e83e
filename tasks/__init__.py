"""hoprec stage tasks and the plain functions behind them, one module a stage."""
from tasks.config import bootstrap_prefect_env

bootstrap_prefect_env()

import logging as _logging  # noqa: E402

# progress of long work (training steps, ...) at INFO; Prefect copies its handlers onto the
# `hoprec` logger (PREFECT_LOGGING_EXTRA_LOGGERS), so the lines reach the console and the UI
if _logging.getLogger("hoprec").level == _logging.NOTSET:
    _logging.getLogger("hoprec").setLevel(_logging.INFO)
