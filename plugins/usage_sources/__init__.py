"""Bundled usage-source plugins."""
