"""Cluster side: the session-state actor, its persistence, settings and deploy files."""
