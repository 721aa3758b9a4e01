"""Authentication, sessions, API tokens, roles and audit."""
