"""Vetting and confinement of third-party plugins: ``scanner`` (static analysis before install) and
``runner`` (the subprocess sandbox enabled plugins run in)."""
