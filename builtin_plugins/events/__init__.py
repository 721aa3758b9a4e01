"""Event pipeline: mirror, dead-letter queue, event API and live stream."""
