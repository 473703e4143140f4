"""The two kinds of failure the CLI tells apart (docs/configuration.md: exit 2 and exit 1)."""


class BadInput(Exception):
    """The user's input or settings are wrong; the message says what and how to fix it (exit 2)."""


class LoadFailed(Exception):
    """Anything else went wrong (exit 1); whatever was landed before stays landed."""
