"""The webhook exporter's guard: where it may connect.

``https://`` only; plain ``http://`` only to a loopback host (``localhost``,
127.0.0.0/8, ``[::1]``), refused by the schema (``hub check``) and by the
factory. Against server-side request forgery, the host name is resolved
before each attempt and the attempt is refused (permanently) when an
address is loopback, private, link-local (169.254.169.254, the cloud
metadata service), shared, reserved, multicast or unspecified, unless
``allow_private = true``; a URL whose host is written as a loopback name or
address may reach loopback. The address actually connected to is checked
again before a byte is sent (:func:`guarded_session`), so a name that
resolves differently the second time (DNS rebinding) gets nowhere. Proxy
variables and ``.netrc`` of the environment are ignored (a proxy would hide
the real destination; ``.netrc`` would add credentials nobody configured).

This module knows addresses and connections; it must not know events,
invoices, signatures or the receiver's answers.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


def is_loopback_name(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refused_address(address: str, *, loopback_ok: bool) -> str | None:
    """Why an attempt may not go to ``address`` (None: it may)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) is no part of it
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return None if loopback_ok else "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    if not ip.is_global:  # shared (100.64.0.0/10), reserved, unspecified, documentation ranges
        return "non-public"
    return None


class DestinationRefused(Exception):
    """Raised inside the connection when the peer is not allowed (deliberately
    not an OSError, so neither urllib3 nor requests retries or rewraps it)."""


def guarded_session(check: Callable[[str], str | None], ca_file: str | None) -> requests.Session:
    """A session whose every new connection is checked, by the address it
    actually reached, before anything is sent on it."""

    class Checked:
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()  # type: ignore[misc]
            why = check(sock.getpeername()[0])
            if why is not None:
                sock.close()
                raise DestinationRefused(why)
            return sock

    class Conn(Checked, HTTPConnection):
        pass

    class TLSConn(Checked, HTTPSConnection):
        pass

    class Pool(HTTPConnectionPool):
        ConnectionCls = Conn

    class TLSPool(HTTPSConnectionPool):
        ConnectionCls = TLSConn

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": TLSPool}

    session = requests.Session()
    session.trust_env = False  # no proxy or .netrc from the environment: see the module's docstring
    if ca_file is not None:
        session.verify = ca_file
    for prefix in ("http://", "https://"):
        session.mount(prefix, Adapter(max_retries=0))
    return session
