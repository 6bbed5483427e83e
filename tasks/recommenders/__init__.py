"""Recommenders trained from scratch: non-neural baselines, SASRec and the SID transformer."""
