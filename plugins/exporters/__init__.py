"""Bundled exporter plugins."""
