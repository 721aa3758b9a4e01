"""Object storage backends, task attachments and backups."""
