"""The export of the raw tables to another engine (`python -m loaders export --target
postgres|spark`)."""
