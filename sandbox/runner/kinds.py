"""Kinds of violation, shared by the worker and the kernel (kept apart so the kernel need not import
RestrictedPython)."""

BLOCKED_KINDS = frozenset({"import", "dunder", "attribute", "builtin", "write", "syntax", "permission"})
"""Violation kinds that mean plugin code tried something it may not (status ``blocked``)."""

LIMIT_KINDS = frozenset({"memory", "cpu", "recursion", "output", "timeout", "crash"})
"""Violation kinds that mean a limit stopped the plugin (status ``contained``)."""
