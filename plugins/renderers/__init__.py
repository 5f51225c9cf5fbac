"""Bundled renderer plugins."""
