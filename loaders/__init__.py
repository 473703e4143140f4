"""Loaders: land Microsoft Graph mail/calendar metadata and CRM snapshots raw in DuckDB."""
