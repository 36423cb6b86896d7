"""The recipe studies: scripts run as `python -m studies.<name>` from the repository root."""
