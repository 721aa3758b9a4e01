"""Metrics, structured logs in the database, system sampling and retention."""
