"""The application layer's errors, which every caller shows its user as they are."""

from hub.store.db import StoreUnavailable  # re-exported: the store cannot be opened (the CLI exits 8)

__all__ = ["HubError", "NotFound", "StoreUnavailable"]


class HubError(Exception):
    """An operation refused for its input or the state of the hub; the message names the problem."""


class NotFound(HubError):
    """The thing named (an invoice, a delivery) does not exist."""
