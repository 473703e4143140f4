"""Leadspace: consented firmographics for CRM accounts (`python -m loaders leadspace`)."""
