"""Connectors: how gems reach what lies outside the engine (file stores, mail servers)
through a project's named connections."""
