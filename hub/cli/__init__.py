"""The ``hub`` command: parses arguments, calls the application layer, prints."""
