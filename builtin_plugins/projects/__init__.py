"""Projects, components, tasks and their dependency graph."""
