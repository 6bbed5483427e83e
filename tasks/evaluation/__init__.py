"""Evaluation: scoring every model on the same users, metrics, memorization groups, fusion
and the report."""
