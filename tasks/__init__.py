"""hoprec's stage tasks and the plain functions behind them, one package a stage.

Imports point down only: evaluation -> llm, recommenders -> sids, relations -> data. Importing
any module here has no side effects; `settings.apply_settings()` runs when a command starts.
"""
