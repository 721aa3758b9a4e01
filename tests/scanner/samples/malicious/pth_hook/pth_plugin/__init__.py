# ruff: noqa
"""Harmless code; the .pth file runs at every interpreter start."""
