"""The scanner's exception, in a module of its own so that callers can catch it cheaply."""


class UnusableInput(Exception):
    """The target cannot be scanned: missing, unreadable, of an unknown kind, corrupt or hostile."""
