# ruff: noqa
"""Asks for a permission that does not exist, for an API that does not exist."""
