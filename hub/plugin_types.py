"""Kept for plugins written against it: the records now live in :mod:`hub.plugin`."""

from hub.plugin.types import *  # noqa: F401,F403
