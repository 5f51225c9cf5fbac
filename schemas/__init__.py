"""JSON schemas of hub.toml and of the hub's JSON outputs (installed as ``hub.schemas``)."""
